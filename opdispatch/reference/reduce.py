"""Reference reductions; ``axis`` arrives as a sorted tuple of non-negative axes."""

from __future__ import annotations

import numpy as np


def sum(x, *, axis, keepdims):  # noqa: A001 - op name
    """Sum over ``axis``."""
    return np.sum(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def mean(x, *, axis, keepdims):
    """Mean over ``axis``."""
    return np.mean(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def max(x, *, axis, keepdims):  # noqa: A001 - op name
    """Maximum over ``axis`` (nan propagates)."""
    return np.max(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def max_backward(x, dy, *, axis, keepdims):
    """dy of each reduced slice split equally among the slice's maxima (NaN maxima: the NaNs)."""
    x, dy = _f64(x), _f64(dy)
    m = np.max(x, axis=axis, keepdims=True)
    hit = (x == m) | (np.isnan(x) & np.isnan(m))
    count = hit.sum(axis=axis, keepdims=True)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), 0.0)
