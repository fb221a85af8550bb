"""Reference comparisons and where: NumPy's own element-wise semantics (IEEE comparisons: NaN
unequal to everything), on the operands as given (a float32 or int value compares exactly)."""

from __future__ import annotations

import numpy as np


def equal(a, b):
    """a == b."""
    return np.equal(np.asarray(a), np.asarray(b))


def not_equal(a, b):
    """a != b (true where either is NaN)."""
    return np.not_equal(np.asarray(a), np.asarray(b))


def less(a, b):
    """a < b."""
    return np.less(np.asarray(a), np.asarray(b))


def less_equal(a, b):
    """a <= b."""
    return np.less_equal(np.asarray(a), np.asarray(b))


def greater(a, b):
    """a > b."""
    return np.greater(np.asarray(a), np.asarray(b))


def greater_equal(a, b):
    """a >= b."""
    return np.greater_equal(np.asarray(a), np.asarray(b))


def where(cond, a, b):
    """a where cond, else b (float operands in float64, integer ones in their dtype)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        a, b = a.astype(np.float64), b.astype(np.float64)
    return np.where(np.asarray(cond, dtype=bool), a, b)
