"""Reference reductions; ``axis`` arrives as a sorted tuple of non-negative axes."""

from __future__ import annotations

import numpy as np


def sum(x, *, axis, keepdims):  # noqa: A001 - op name
    """Sum over ``axis``."""
    return np.sum(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def mean(x, *, axis, keepdims):
    """Mean over ``axis``."""
    return np.mean(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _values(x):
    """Float ``x`` in float64; int and bool ``x`` as they are (their extrema are exact in their dtype)."""
    x = np.asarray(x)
    return x if x.dtype.kind in "iub" else x.astype(np.float64)


def max(x, *, axis, keepdims):  # noqa: A001 - op name
    """Maximum over ``axis`` (nan propagates); int and bool x keep their dtype."""
    return np.max(_values(x), axis=axis, keepdims=keepdims)


def max_backward(x, dy, *, axis, keepdims):
    """dy of each reduced slice split equally among the slice's maxima (NaN maxima: the NaNs)."""
    x, dy = _f64(x), _f64(dy)
    m = np.max(x, axis=axis, keepdims=True)
    hit = (x == m) | (np.isnan(x) & np.isnan(m))
    count = hit.sum(axis=axis, keepdims=True)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), 0.0)


def min(x, *, axis, keepdims):  # noqa: A001 - op name
    """Minimum over ``axis`` (nan propagates); int and bool x keep their dtype."""
    return np.min(_values(x), axis=axis, keepdims=keepdims)


def min_backward(x, dy, *, axis, keepdims):
    """dy of each reduced slice split equally among the slice's minima (NaN minima: the NaNs)."""
    x, dy = _f64(x), _f64(dy)
    m = np.min(x, axis=axis, keepdims=True)
    hit = (x == m) | (np.isnan(x) & np.isnan(m))
    count = hit.sum(axis=axis, keepdims=True)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), 0.0)


def _arg(pick, x, axis, keepdims):
    """The index NumPy's argmax / argmin gives (first on ties, the first NaN where there is one),
    over the flattened ``x`` when ``axis`` is None; int64."""
    x = np.asarray(x)
    if axis is None:
        out = np.asarray(pick(x.reshape(-1)), dtype=np.int64)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return np.asarray(pick(x, axis=axis, keepdims=keepdims), dtype=np.int64)


def argmax(x, *, axis, keepdims):
    """Index of the maximum along ``axis``."""
    return _arg(np.argmax, x, axis, keepdims)


def argmin(x, *, axis, keepdims):
    """Index of the minimum along ``axis``."""
    return _arg(np.argmin, x, axis, keepdims)
