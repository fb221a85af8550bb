"""The compare family: comparisons (bool, NumPy broadcasting, IEEE NaN) and where (masked select,
its gradient masked and unbroadcast), with clear errors; on numpy:0 and opencl:0, eager and under
od.function."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from device_params import DEVICES, MODES, in_mode
from opdispatch.errors import DTypeError, ShapeError

OPS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0], dtype=np.float32)

pytestmark = [pytest.mark.parametrize("mode", MODES), pytest.mark.parametrize("dev", DEVICES)]


def _on(dev, a):
    return od.tensor(a, device=dev)


@pytest.mark.parametrize("op", OPS)
def test_comparisons_follow_numpy_with_nan_and_signed_zeros(op, dev, mode):
    a = SPECIAL[:, None]
    b = SPECIAL[None, :]
    got = in_mode(getattr(od, op), mode)(_on(dev, a), _on(dev, b))
    assert got.dtype == np.bool_ and got.shape == (7, 7) and got.device == od.Device(dev)
    np.testing.assert_array_equal(got.numpy(), getattr(np, op)(a, b))


def test_nan_is_unequal_to_itself(dev, mode):
    x = _on(dev, np.array([np.nan, 1.0], np.float32))
    eq, ne = in_mode(lambda t: (od.equal(t, t), od.not_equal(t, t)), mode)(x)
    np.testing.assert_array_equal(eq.numpy(), [False, True])
    np.testing.assert_array_equal(ne.numpy(), [True, False])


def test_python_number_takes_the_tensor_dtype(dev, mode):
    x = _on(dev, np.array([0.5, -1.0], np.float32))
    gt, lt = in_mode(lambda t: (od.greater(t, 0), od.less(0, t)), mode)(x)
    np.testing.assert_array_equal(gt.numpy(), [True, False])
    np.testing.assert_array_equal(lt.numpy(), [True, False])


def test_errors_name_the_argument(dev, mode):
    x = _on(dev, np.zeros(3, np.float32))
    with pytest.raises(DTypeError, match="equal: argument 'b' got dtype float64 but 'a' has float32"):
        in_mode(lambda t: od.equal(t, np.zeros(3)), mode)(x)
    with pytest.raises(ShapeError, match="less: arguments 'a' \\(3,\\) and 'b' \\(4,\\) do not broadcast"):
        in_mode(lambda t: od.less(t, np.zeros(4, np.float32)), mode)(x)
    with pytest.raises(DTypeError, match="where: argument 'cond' got dtype float32; allowed: bool"):
        in_mode(lambda t: od.where(t, t, t), mode)(x)
    with pytest.raises(DTypeError, match="where: argument 'a' got dtype bool"):
        in_mode(lambda t: od.where(od.greater(t, 0), od.greater(t, 0), od.greater(t, 0)), mode)(x)


def test_where_broadcasts_all_three(dev, mode):
    rng = np.random.default_rng(1)
    c = rng.random((2, 1, 4)) < 0.5
    a = rng.standard_normal((3, 1)).astype(np.float32)
    b = rng.standard_normal((2, 3, 4)).astype(np.float32)
    got = in_mode(od.where, mode)(_on(dev, c), _on(dev, a), _on(dev, b))
    assert got.device == od.Device(dev)
    np.testing.assert_array_equal(got.numpy(), np.where(c, a, b))


def test_where_gradient_is_masked_and_unbroadcast(dev, mode):
    rng = np.random.default_rng(2)
    c = rng.random((3, 4)) < 0.5

    def grads(cond, a, b):
        with od.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            y = od.sum(od.where(cond, a, b) * 2.0)
        return tuple(tape.gradient(y, [a, b]))

    ga, gb = in_mode(grads, mode)(_on(dev, c), _on(dev, rng.standard_normal((4,)).astype(np.float32)),
                                  _on(dev, rng.standard_normal((3, 4)).astype(np.float32)))
    assert ga.device == gb.device == od.Device(dev)
    np.testing.assert_allclose(ga.numpy(), 2.0 * c.sum(axis=0))
    np.testing.assert_allclose(gb.numpy(), 2.0 * ~c)


def test_relu_by_where_is_differentiable_in_x(dev, mode):
    def grad(x):
        with od.GradientTape() as tape:
            tape.watch(x)
            y = od.sum(od.where(od.greater(x, 0), x, 0) * x)
        return tape.gradient(y, x)

    g = in_mode(grad, mode)(_on(dev, np.array([-1.0, 2.0, 0.0, 3.0], np.float32)))
    np.testing.assert_allclose(g.numpy(), [0.0, 4.0, 0.0, 6.0])


def test_comparison_alone_has_no_gradient(dev, mode):
    def run(x):
        with od.GradientTape() as tape:
            tape.watch(x)
            m = od.greater(x, 1)
            y = od.sum(x * 1.0)
        return m, tape.gradient(y, x)

    m, g = in_mode(run, mode)(_on(dev, np.array([1.0, 2.0], np.float32)))
    assert m.dtype == np.bool_
    np.testing.assert_array_equal(m.numpy(), [False, True])
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0])
