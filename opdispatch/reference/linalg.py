"""Reference matrix product."""

from __future__ import annotations

import numpy as np


def matmul(a, b):
    """``numpy.matmul`` in float64: 1-D promotion and broadcast batch dimensions."""
    return np.matmul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
