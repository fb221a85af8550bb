"""sum, mean, max, min over an axis tuple, the gradients of max and min, and argmax / argmin.

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


def _extremum_backward(kind: str, x: Array, dy: Array, axis: tuple) -> Array:
    """dy of each reduced slice split equally among the slice's extrema (``kind``: "max" or "min";
    NaN extrema: the NaNs)."""
    xp = array_module(x)
    peak = _reduce(kind, x, axis, True)
    hit = (x == peak) | (xp.isnan(x) & xp.isnan(peak))
    count = _reduce("sum", hit, axis, True).astype(x.dtype)
    g = dy.reshape(peak.shape)  # dy with the reduced axes kept (as size 1)
    return xp.where(hit, g / xp.maximum(count, 1), xp.zeros((), dtype=x.dtype))


def min_(x: Array, *, axis: tuple, keepdims: bool) -> Array:
    """Minimum over ``axis``; NaN propagates."""
    return _reduce("min", x, axis, keepdims)


def max_backward(x: Array, dy: Array, *, axis: tuple, keepdims: bool) -> Array:
    """dy of each reduced slice split equally among the slice's maxima (NaN maxima: the NaNs)."""
    return _extremum_backward("max", x, dy, axis)


def min_backward(x: Array, dy: Array, *, axis: tuple, keepdims: bool) -> Array:
    """dy of each reduced slice split equally among the slice's minima (NaN minima: the NaNs)."""
    return _extremum_backward("min", x, dy, axis)


def _arg(name: str, x: Array, axis, keepdims: bool) -> Array:
    """argmax / argmin (first on ties, first NaN), int64; axis None over the flattened x."""
    xp = array_module(x)
    if axis is None:
        out = getattr(xp, name)(x.reshape(-1)).astype("int64")
        return out.reshape((1,) * x.ndim) if keepdims else out
    out = getattr(xp, name)(x, axis=axis).astype("int64")
    return xp.expand_dims(out, axis) if keepdims else out


def argmax(x: Array, *, axis, keepdims: bool) -> Array:
    """Index of the first maximum (or first NaN) along ``axis``."""
    return _arg("argmax", x, axis, keepdims)


def argmin(x: Array, *, axis, keepdims: bool) -> Array:
    """Index of the first minimum (or first NaN) along ``axis``."""
    return _arg("argmin", x, axis, keepdims)


KERNELS: dict[str, Callable[..., Array]] = {"sum": sum_, "mean": mean, "max": max_, "max_backward": max_backward,
                                            "min": min_, "min_backward": min_backward, "argmax": argmax,
                                            "argmin": argmin}
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(("argmax", "argmin"),
                                                   ("float16", "float32", "float64", "int32", "int64"))
DTYPES.update(dict.fromkeys(("max", "min"), ("float16", "float32", "float64", "int32", "int64", "bool")))
"""Kernels that compute in more than the floats (argmax / argmin of int tensors, max / min of int and bool
ones)."""
