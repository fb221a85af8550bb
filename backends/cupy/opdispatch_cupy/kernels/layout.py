"""Layout ops: reshape, transpose, flatten (views where the array module allows them) and broadcast_to."""

from __future__ import annotations

import math
from typing import Callable

from ..xp import Array, array_module


def reshape(x: Array, *, shape: tuple) -> Array:
    """The same elements, row-major, under ``shape`` (already resolved by the schema)."""
    return array_module(x).reshape(x, tuple(shape))


def transpose(x: Array, *, axes: tuple) -> Array:
    """Axes permuted."""
    return array_module(x).transpose(x, tuple(axes))


def flatten(x: Array, *, start_axis: int) -> Array:
    """Every axis from ``start_axis`` on merged into one."""
    return array_module(x).reshape(x, tuple(x.shape[:start_axis]) + (math.prod(x.shape[start_axis:]),))


def broadcast_to(x: Array, *, shape: tuple) -> Array:
    """x broadcast to ``shape``, materialised (a contiguous copy, not a stride-0 view)."""
    return array_module(x).broadcast_to(x, tuple(shape)).copy()  # copy() is C-ordered, keeps 0-d


KERNELS: dict[str, Callable[..., Array]] = {"reshape": reshape, "transpose": transpose, "flatten": flatten,
                                         "broadcast_to": broadcast_to}
