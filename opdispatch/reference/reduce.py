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
