"""min (with its backward op, ties split equally as max does), argmax and argmin (int64, NumPy's axis
and NaN rules, first occurrence on ties)."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from device_params import DEVICES, MODES, in_mode
from opdispatch.errors import DTypeError, InvalidArgumentError, ShapeError

X = np.array([[1.0, 5.0, 5.0, 2.0], [7.0, -1.0, 7.0, -1.0], [0.0, np.nan, 3.0, np.nan]], np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_matches_numpy(op, axis, keepdims, dev, mode):
    for x in (X, np.nan_to_num(X), np.nan_to_num(X).astype(np.int32)):
        got = in_mode(lambda t: getattr(od, op)(t, axis=axis, keepdims=keepdims), mode)(od.tensor(x, device=dev))
        want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
        assert got.dtype == np.int64 and got.shape == want.shape and got.device == od.Device(dev)
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_arg_errors(dev, mode):
    x = od.tensor(X, device=dev)
    with pytest.raises(InvalidArgumentError, match="argmax: argument 'axis' got \\(0, 1\\)"):
        in_mode(lambda t: od.argmax(t, axis=(0, 1)), mode)(x)
    with pytest.raises(InvalidArgumentError, match="argmin: argument 'axis' got 2"):
        in_mode(lambda t: od.argmin(t, axis=2), mode)(x)
    with pytest.raises(ShapeError, match="argmax: argument 'x' got shape \\(0,\\)"):
        in_mode(od.argmax, mode)(od.tensor(np.zeros(0, np.float32), device=dev))
    with pytest.raises(DTypeError, match="argmax: argument 'x' got dtype bool"):
        in_mode(od.argmax, mode)(od.tensor(np.array([True, False]), device=dev))


def test_argmax_has_no_gradient_rule():  # a property of the schema: no device, no mode
    assert od.ops.OPS["argmax"].vjp is None and "no gradient" in od.ops.OPS["argmax"].no_vjp


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_min_matches_numpy_nan_propagating(axis, dev, mode):
    got = in_mode(lambda t: od.min(t, axis=axis), mode)(od.tensor(X, device=dev))
    assert got.device == od.Device(dev)
    np.testing.assert_array_equal(got.numpy(), np.min(X, axis=axis))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_min_gradient_splits_ties(dev, mode):
    def grad(x):
        with od.GradientTape() as tape:
            tape.watch(x)
            y = od.sum(od.min(x, axis=1))
        return tape.gradient(y, x)

    g = in_mode(grad, mode)(od.tensor(np.array([[1.0, -2.0, -2.0], [0.0, 3.0, 5.0]], np.float32), device=dev))
    assert g.device == od.Device(dev)
    np.testing.assert_allclose(g.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_max_min_of_int_and_bool_tensors_match_numpy(dtype, dev, mode):
    """od.max / od.min, the methods and np.max / np.min on int and bool tensors: NumPy's values in the
    input's dtype (exact: int64 beyond 2**53 too), over short rows and rows longer than a work-group."""
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype) if dtype != "bool" else None
    for shape in ((3, 5), (2, 3, 4), (3, 1000)):
        a = rng.integers(-50, 50, shape).astype(dtype) if info else rng.random(shape) < 0.3
        if info:
            a.flat[1], a.flat[-2] = info.max, info.min  # the extremes of the dtype (2**63 - 1 is no float64)
        t = od.tensor(a, device=dev)
        for axis in (None, 0, -1, (0, a.ndim - 1)):
            for keepdims in (False, True):
                for op in ("max", "min"):
                    want = getattr(np, op)(a, axis=axis, keepdims=keepdims)
                    results = in_mode(lambda x: (getattr(od, op)(x, axis=axis, keepdims=keepdims),
                                                  getattr(x, op)(axis=axis, keepdims=keepdims),
                                                  getattr(np, op)(x, axis=axis, keepdims=keepdims)), mode)(t)
                    for got in results:
                        assert isinstance(got, od.Tensor) and got.device == od.Device(dev)
                        assert got.dtype == a.dtype and got.shape == want.shape, (op, axis, got.dtype, got.shape)
                        np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{op} axis={axis}")


def test_max_of_an_int_tensor_has_no_gradient_and_other_dtypes_stay_refused():
    with pytest.raises(od.GradientError, match="int64"):
        with od.GradientTape() as tape:
            tape.watch(od.tensor([1, 2]))
    with pytest.raises(ShapeError, match="max: argument 'x' got shape \\(0,\\)"):
        od.max(od.tensor(np.zeros(0, np.int32)))
    with pytest.raises(DTypeError, match="max_backward: argument 'x' got dtype int64; allowed: float16"):
        od.op_function("max_backward")(od.tensor([1, 2]), od.tensor([1, 2]))
