"""Layout kernels (views where NumPy gives them; tensors are immutable)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def reshape(x, *, shape):
    return np.reshape(x, shape)


def transpose(x, *, axes):
    return np.transpose(x, axes)


def flatten(x, *, start_axis):
    return np.reshape(x, x.shape[:start_axis] + (math.prod(x.shape[start_axis:]),))


def broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


KERNELS: dict[str, Callable] = {"reshape": reshape, "transpose": transpose, "flatten": flatten,
                                "broadcast_to": broadcast_to}
