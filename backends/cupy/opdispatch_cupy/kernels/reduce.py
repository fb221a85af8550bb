"""sum, mean, max over an axis tuple, and the gradient of max.

``axis`` arrives as a sorted tuple of non-negative axes; an empty tuple (a 0-d input) reduces
nothing and is handled here rather than left to the array module's edge cases.
"""

from __future__ import annotations

from typing import Callable

from ..xp import Array, array_module


def _reduce(name: str, x: Array, axis: tuple, keepdims: bool) -> Array:
    if not axis:
        return x.copy()
    return getattr(array_module(x), name)(x, axis=axis, keepdims=keepdims)


def sum_(x: Array, *, axis: tuple, keepdims: bool) -> Array:
    """Sum over ``axis``."""
    return _reduce("sum", x, axis, keepdims)


def mean(x: Array, *, axis: tuple, keepdims: bool) -> Array:
    """Mean over ``axis``."""
    return _reduce("mean", x, axis, keepdims)


def max_(x: Array, *, axis: tuple, keepdims: bool) -> Array:
    """Maximum over ``axis``; NaN propagates."""
    return _reduce("max", x, axis, keepdims)


def max_backward(x: Array, dy: Array, *, axis: tuple, keepdims: bool) -> Array:
    """dy of each reduced slice split equally among the slice's maxima (NaN maxima: the NaNs)."""
    xp = array_module(x)
    peak = _reduce("max", x, axis, True)
    hit = (x == peak) | (xp.isnan(x) & xp.isnan(peak))
    count = _reduce("sum", hit, axis, True).astype(x.dtype)
    g = dy.reshape(peak.shape)  # dy with the reduced axes kept (as size 1)
    return xp.where(hit, g / xp.maximum(count, 1), xp.zeros((), dtype=x.dtype))


KERNELS: dict[str, Callable[..., Array]] = {"sum": sum_, "mean": mean, "max": max_, "max_backward": max_backward}
