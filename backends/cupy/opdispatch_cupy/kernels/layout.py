"""Layout ops: reshape, transpose, flatten (views where the array module allows them), broadcast_to, pad,
slice, concat, gather and scatter_add."""

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


def gather(x: Array, indices: Array, *, axis: int) -> Array:
    """take along ``axis`` (the schema checked the indices are in range; negative ones wrap)."""
    xp = array_module(x)
    n = x.shape[axis]
    idx = xp.where(indices < 0, indices + n, indices)
    return xp.take(x, idx, axis=axis)


def scatter_add(updates: Array, indices: Array, *, axis: int, size: int) -> Array:
    """Zeros, and each slice of ``updates`` added at its index along ``axis``: ``cupyx.scatter_add``
    (atomic adds) on the GPU, ``numpy.add.at`` elsewhere; repeated indices accumulate."""
    xp = array_module(updates)
    k = indices.ndim
    outer, inner = tuple(updates.shape[:axis]), tuple(updates.shape[axis + k:])
    u = updates.reshape((math.prod(outer), int(indices.size), math.prod(inner)))
    out = xp.zeros((u.shape[0], size, u.shape[2]), updates.dtype)
    idx = indices.reshape(-1).astype("int64")
    idx = xp.where(idx < 0, idx + size, idx)
    if xp.__name__ == "numpy":
        xp.add.at(out, (builtins.slice(None), idx), u)
    else:
        import cupyx

        cupyx.scatter_add(out, (builtins.slice(None), idx), u)
    return out.reshape(outer + (size,) + inner)


KERNELS: dict[str, Callable[..., Array]] = {"reshape": reshape, "transpose": transpose, "flatten": flatten,
                                         "broadcast_to": broadcast_to, "pad": pad, "slice": slice,
                                         "concat": concat, "gather": gather, "scatter_add": scatter_add}

_VALUES = ("float16", "float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel: layout moves values of any dtype (the array module's functions
are dtype-generic); scatter_add sums, so it takes no bool."""
DTYPES["scatter_add"] = _VALUES
