"""Reductions and max's gradient, in the input dtype."""

from __future__ import annotations

from typing import Callable

import numpy as np


def sum_(x, *, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, *, axis, keepdims):
    return np.mean(x, axis=axis, keepdims=keepdims)


def max_(x, *, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims)


def _extremum_backward(pick, x, dy, axis, keepdims):
    """dy of each reduced slice split equally among the slice's extrema (``pick``: np.max or np.min;
    NaN extrema: the NaNs)."""
    m = pick(x, axis=axis, keepdims=True)
    hit = x == m
    if np.isnan(m).any():
        hit |= np.isnan(x) & np.isnan(m)
    count = np.sum(hit, axis=axis, keepdims=True, dtype=x.dtype)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), x.dtype.type(0))


def min_(x, *, axis, keepdims):
    return np.min(x, axis=axis, keepdims=keepdims)


def max_backward(x, dy, *, axis, keepdims):
    return _extremum_backward(np.max, x, dy, axis, keepdims)


def min_backward(x, dy, *, axis, keepdims):
    return _extremum_backward(np.min, x, dy, axis, keepdims)


def _arg(pick, x, axis, keepdims):
    """NumPy's argmax / argmin (first on ties, first NaN); axis None over the flattened x."""
    if axis is None:
        out = np.asarray(pick(x.reshape(-1)), dtype=np.int64)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return np.asarray(pick(x, axis=axis, keepdims=keepdims), dtype=np.int64)


def argmax(x, *, axis, keepdims):
    return _arg(np.argmax, x, axis, keepdims)


def argmin(x, *, axis, keepdims):
    return _arg(np.argmin, x, axis, keepdims)


KERNELS: dict[str, Callable] = {"sum": sum_, "mean": mean, "max": max_, "max_backward": max_backward,
                                "min": min_, "min_backward": min_backward, "argmax": argmax, "argmin": argmin}
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(("argmax", "argmin"), ("float32", "float64", "int32", "int64"))
DTYPES.update(dict.fromkeys(("max", "min"), ("float32", "float64", "int32", "int64", "bool")))
"""Kernels that compute in more than the backend's float dtypes (argmax / argmin of int tensors, max / min
of int and bool ones)."""
