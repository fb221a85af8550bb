"""Layout ops: reshape, transpose, flatten (views where the array module allows them), broadcast_to, pad,
slice and concat."""

from __future__ import annotations

import builtins
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


def pad(x: Array, *, pads: tuple, mode: str, value: float) -> Array:
    """x padded on every axis by ``pads`` ((before, after) pairs, resolved by the schema)."""
    xp = array_module(x)
    if not any(a or b for a, b in pads):  # nothing to pad (pad refuses a 0-d array)
        return x.copy()
    if mode == "constant":
        return xp.pad(x, pads, mode="constant", constant_values=value)
    return xp.pad(x, pads, mode=mode)


def slice(x: Array, *, starts: tuple, ends: tuple, axes: tuple, steps: tuple) -> Array:  # noqa: A001 - op name
    """``x[start:end:step]`` on every axis, as a contiguous copy."""
    view = x[tuple(builtins.slice(b, e, s) for b, e, s in zip(starts, ends, steps))]
    return array_module(x).ascontiguousarray(view)


def concat(*xs: Array, axis: int) -> Array:
    """The inputs joined along ``axis``."""
    return array_module(xs[0]).concatenate(xs, axis=axis)


KERNELS: dict[str, Callable[..., Array]] = {"reshape": reshape, "transpose": transpose, "flatten": flatten,
                                         "broadcast_to": broadcast_to, "pad": pad, "slice": slice,
                                         "concat": concat}
