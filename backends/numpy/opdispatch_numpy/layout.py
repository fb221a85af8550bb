"""Layout kernels (views where NumPy gives them; tensors are immutable)."""

from __future__ import annotations

import builtins
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


def pad(x, *, pads, mode, value):
    if not any(a or b for a, b in pads):  # nothing to pad (numpy.pad refuses a 0-d array)
        return x
    if mode == "constant":
        return np.pad(x, pads, mode="constant", constant_values=value)
    return np.pad(x, pads, mode=mode)


def slice(x, *, starts, ends, axes, steps):  # noqa: A001 - op name
    return x[tuple(builtins.slice(b, e, s) for b, e, s in zip(starts, ends, steps))]


def concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


def gather(x, indices, *, axis):
    """numpy.take (the schema checked the indices; negative ones wrap)."""
    return np.take(x, indices, axis=axis)


def scatter_add(updates, indices, *, axis, size):
    """Zeros, and each slice of ``updates`` added at its index along ``axis`` (np.add.at: repeated
    indices accumulate, in order)."""
    k = indices.ndim
    outer, inner = updates.shape[:axis], updates.shape[axis + k:]
    n = indices.size
    u = updates.reshape((math.prod(outer), n, math.prod(inner)))
    out = np.zeros((u.shape[0], size, u.shape[2]), updates.dtype)
    idx = indices.reshape(-1).astype(np.intp)
    idx = np.where(idx < 0, idx + size, idx)
    np.add.at(out, (builtins.slice(None), idx), u)
    return out.reshape(outer + (size,) + inner)


KERNELS: dict[str, Callable] = {"reshape": reshape, "transpose": transpose, "flatten": flatten,
                                "broadcast_to": broadcast_to, "pad": pad, "slice": slice, "concat": concat,
                                "gather": gather, "scatter_add": scatter_add}

_VALUES = ("float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel: layout moves values of any dtype (NumPy's kernels are
dtype-generic); scatter_add sums, so it takes no bool."""
DTYPES["scatter_add"] = _VALUES
