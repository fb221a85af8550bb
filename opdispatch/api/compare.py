"""Public functions of the compare family: element-wise comparisons (bool tensors) and where."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, compared, run
from ._types import ArrayLike

__all__ = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "where"]

_NO_ATTRS: dict = {}


def equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a == b element-wise (bool), NumPy broadcasting; NaN compares unequal."""
    return run(OPS["equal"], compared(a, b), _NO_ATTRS)


def not_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a != b element-wise (bool), NumPy broadcasting; NaN compares unequal."""
    return run(OPS["not_equal"], compared(a, b), _NO_ATTRS)


def less(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a < b element-wise (bool), NumPy broadcasting."""
    return run(OPS["less"], compared(a, b), _NO_ATTRS)


def less_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a <= b element-wise (bool), NumPy broadcasting."""
    return run(OPS["less_equal"], compared(a, b), _NO_ATTRS)


def greater(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a > b element-wise (bool), NumPy broadcasting."""
    return run(OPS["greater"], compared(a, b), _NO_ATTRS)


def greater_equal(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a >= b element-wise (bool), NumPy broadcasting."""
    return run(OPS["greater_equal"], compared(a, b), _NO_ATTRS)


def where(cond: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """a where ``cond`` (a bool tensor), else b; all three broadcast. a and b share one float or int
    dtype (a Python number takes the other's). The gradient flows to a where cond holds, to b elsewhere."""
    return run(OPS["where"], (cond, a, b), _NO_ATTRS)
