"""min (with its backward op, ties split equally as max does), argmax and argmin (int64, NumPy's axis
and NaN rules, first occurrence on ties)."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.errors import DTypeError, InvalidArgumentError, ShapeError

X = np.array([[1.0, 5.0, 5.0, 2.0], [7.0, -1.0, 7.0, -1.0], [0.0, np.nan, 3.0, np.nan]], np.float32)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_matches_numpy(op, axis, keepdims):
    for x in (X, np.nan_to_num(X), np.nan_to_num(X).astype(np.int32)):
        got = getattr(od, op)(od.tensor(x), axis=axis, keepdims=keepdims)
        want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)


def test_arg_errors():
    with pytest.raises(InvalidArgumentError, match="argmax: argument 'axis' got \\(0, 1\\)"):
        od.argmax(od.tensor(X), axis=(0, 1))
    with pytest.raises(InvalidArgumentError, match="argmin: argument 'axis' got 2"):
        od.argmin(od.tensor(X), axis=2)
    with pytest.raises(ShapeError, match="argmax: argument 'x' got shape \\(0,\\)"):
        od.argmax(od.tensor(np.zeros(0, np.float32)))
    with pytest.raises(DTypeError, match="argmax: argument 'x' got dtype bool"):
        od.argmax(od.tensor(np.array([True, False])))


def test_argmax_has_no_gradient_rule():
    assert od.ops.OPS["argmax"].vjp is None and "no gradient" in od.ops.OPS["argmax"].no_vjp


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_min_matches_numpy_nan_propagating(axis):
    got = od.min(od.tensor(X), axis=axis)
    np.testing.assert_array_equal(got.numpy(), np.min(X, axis=axis))


def test_min_gradient_splits_ties():
    x = od.tensor(np.array([[1.0, -2.0, -2.0], [0.0, 3.0, 5.0]], np.float32))
    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(od.min(x, axis=1))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0, 0.5, 0.5], [1, 0, 0]])
