"""The compare family: comparisons (bool, NumPy broadcasting, IEEE NaN) and where (masked select,
its gradient masked and unbroadcast), with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.errors import DTypeError, ShapeError

OPS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0], dtype=np.float32)


@pytest.mark.parametrize("op", OPS)
def test_comparisons_follow_numpy_with_nan_and_signed_zeros(op):
    a = SPECIAL[:, None]
    b = SPECIAL[None, :]
    got = getattr(od, op)(od.tensor(a), od.tensor(b))
    assert got.dtype == np.bool_ and got.shape == (7, 7)
    np.testing.assert_array_equal(got.numpy(), getattr(np, op)(a, b))


def test_nan_is_unequal_to_itself():
    x = od.tensor(np.array([np.nan, 1.0], np.float32))
    np.testing.assert_array_equal(od.equal(x, x).numpy(), [False, True])
    np.testing.assert_array_equal(od.not_equal(x, x).numpy(), [True, False])


def test_python_number_takes_the_tensor_dtype():
    x = od.tensor(np.array([0.5, -1.0], np.float32))
    np.testing.assert_array_equal(od.greater(x, 0).numpy(), [True, False])
    np.testing.assert_array_equal(od.less(0, x).numpy(), [True, False])


def test_errors_name_the_argument():
    x = od.tensor(np.zeros(3, np.float32))
    with pytest.raises(DTypeError, match="equal: argument 'b' got dtype float64 but 'a' has float32"):
        od.equal(x, np.zeros(3))
    with pytest.raises(ShapeError, match="less: arguments 'a' \\(3,\\) and 'b' \\(4,\\) do not broadcast"):
        od.less(x, np.zeros(4, np.float32))
    with pytest.raises(DTypeError, match="where: argument 'cond' got dtype float32; allowed: bool"):
        od.where(x, x, x)
    with pytest.raises(DTypeError, match="where: argument 'a' got dtype bool"):
        od.where(od.greater(x, 0), od.greater(x, 0), od.greater(x, 0))


def test_where_broadcasts_all_three():
    rng = np.random.default_rng(1)
    c = rng.random((2, 1, 4)) < 0.5
    a = rng.standard_normal((3, 1)).astype(np.float32)
    b = rng.standard_normal((2, 3, 4)).astype(np.float32)
    got = od.where(od.tensor(c), od.tensor(a), od.tensor(b))
    np.testing.assert_array_equal(got.numpy(), np.where(c, a, b))


def test_where_gradient_is_masked_and_unbroadcast():
    rng = np.random.default_rng(2)
    c = rng.random((3, 4)) < 0.5
    a = od.tensor(rng.standard_normal((4,)).astype(np.float32))
    b = od.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    cond = od.tensor(c)
    with od.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        y = od.sum(od.where(cond, a, b) * 2.0)
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_allclose(ga.numpy(), 2.0 * c.sum(axis=0))
    np.testing.assert_allclose(gb.numpy(), 2.0 * ~c)


def test_relu_by_where_is_differentiable_in_x():
    x = od.tensor(np.array([-1.0, 2.0, 0.0, 3.0], np.float32))
    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(od.where(od.greater(x, 0), x, 0) * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0.0, 4.0, 0.0, 6.0])


def test_comparison_alone_has_no_gradient():
    x = od.tensor(np.array([1.0, 2.0], np.float32))
    with od.GradientTape() as tape:
        tape.watch(x)
        m = od.greater(x, 1)
        y = od.sum(x * 1.0)
    assert m.dtype == np.bool_
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [1.0, 1.0])
