"""Public functions of the reduce family."""

from __future__ import annotations

from typing import Optional

from ..ops import OPS
from ..tensor import Tensor, reduce_values, run
from ._types import ArrayLike, Axis

__all__ = ["sum", "mean", "max", "min", "argmax", "argmin"]


def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Sum over ``axis`` (None: every axis); an int or bool tensor gives an int64 count (NumPy)."""
    return reduce_values("sum", x, axis, keepdims)


def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None: every axis); an int or bool tensor gives a float mean (float64 where the
    device has it, as NumPy)."""
    return reduce_values("mean", x, axis, keepdims)


def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Maximum over ``axis`` (None: every axis); float, int32, int64 or bool ``x``, the result in its dtype
    (NumPy's); NaN propagates."""
    return run(OPS["max"], (x,), {"axis": axis, "keepdims": keepdims})


def min(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Minimum over ``axis`` (None: every axis); float, int32, int64 or bool ``x``, the result in its dtype
    (NumPy's); NaN propagates."""
    return run(OPS["min"], (x,), {"axis": axis, "keepdims": keepdims})


def argmax(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """int64 index of the maximum along ``axis`` (None: of the flattened tensor); the first on ties,
    the first NaN where there is one (NumPy's rule)."""
    return run(OPS["argmax"], (x,), {"axis": axis, "keepdims": keepdims})


def argmin(x: ArrayLike, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """int64 index of the minimum along ``axis`` (None: of the flattened tensor); the first on ties,
    the first NaN where there is one (NumPy's rule)."""
    return run(OPS["argmin"], (x,), {"axis": axis, "keepdims": keepdims})
