"""Public functions of the reduce family."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike, Axis

__all__ = ["sum", "mean", "max"]


def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Sum over ``axis`` (None: every axis)."""
    return run(OPS["sum"], (x,), {"axis": axis, "keepdims": keepdims})


def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None: every axis)."""
    return run(OPS["mean"], (x,), {"axis": axis, "keepdims": keepdims})


def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Maximum over ``axis`` (None: every axis)."""
    return run(OPS["max"], (x,), {"axis": axis, "keepdims": keepdims})
