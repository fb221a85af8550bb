"""Layout kernels: reshape and flatten are views of the same buffer; transpose and broadcast_to
copy through the strided-gather kernel."""

from __future__ import annotations

import math
from typing import Sequence

from .arrays import CLArray, broadcast_strides, contiguous_strides
from .elementwise import strided_copy


def reshape(x: CLArray, *, shape: tuple) -> CLArray:
    """The same elements under ``shape`` (a view)."""
    return x.view(shape)


def flatten(x: CLArray, *, start_axis: int) -> CLArray:
    """Every axis from ``start_axis`` on merged into one (a view)."""
    return x.view(x.shape[:start_axis] + (math.prod(x.shape[start_axis:]),))


def permute(x: CLArray, axes: Sequence[int]) -> CLArray:
    """``x`` with its axes permuted, contiguous (a view when the order of non-trivial axes is kept)."""
    shape = tuple(x.shape[a] for a in axes)
    moved = [a for a in axes if x.shape[a] != 1]
    if moved == sorted(moved):
        return x.view(shape)
    own = contiguous_strides(x.shape)
    return strided_copy(x, shape, tuple(own[a] for a in axes))


def transpose(x: CLArray, *, axes: tuple) -> CLArray:
    """Axes permuted by ``axes``."""
    return permute(x, axes)


def broadcast_to(x: CLArray, *, shape: tuple) -> CLArray:
    """``x`` broadcast to ``shape`` (NumPy rules), materialised."""
    if tuple(shape) == x.shape:
        return x
    return strided_copy(x, tuple(shape), broadcast_strides(x.shape, tuple(shape)))


KERNELS = {"reshape": reshape, "flatten": flatten, "transpose": transpose, "broadcast_to": broadcast_to}
