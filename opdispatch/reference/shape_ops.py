"""Reference layout ops."""

from __future__ import annotations

import numpy as np


def reshape(x, *, shape):
    """The same elements in row-major order under ``shape`` (no -1 left: inference resolved it)."""
    return np.reshape(np.asarray(x, dtype=np.float64), shape)


def transpose(x, *, axes):
    """Permute the axes."""
    return np.transpose(np.asarray(x, dtype=np.float64), axes)


def flatten(x, *, start_axis):
    """Merge every axis from ``start_axis`` on into one."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[:start_axis] + (int(np.prod(x.shape[start_axis:])),))
