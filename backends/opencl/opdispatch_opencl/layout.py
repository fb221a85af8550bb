"""Layout kernels: reshape and flatten are views of the same buffer; transpose, broadcast_to and slice
copy through strided-gather kernels, concat through a strided store, pad through its own kernel;
gather and scatter_add too (scatter_add without atomics: the indices are sorted on the host, then one
work-item per output element sums its updates in order). The kernels (``cl/layout.cl``) are built per
value type, so int32, int64 and bool tensors (labels, indices, masks) move as float ones do."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .arrays import (MAX_RANK, CLArray, broadcast_strides, collapse, contiguous_strides, empty, from_numpy, int8,
                     to_numpy)
from .elementwise import ROW_MIN
from . import launch
from .launch import i32, run_1d, scalar
from .runtime import DeviceState, cl_type

FAMILY = "layout"

PAD_MODES = {"constant": 0, "reflect": 1, "edge": 2}


def value_kernel(dev: DeviceState, name: str, dtype: Any, extra: str = "") -> Any:
    """Kernel ``name`` of ``cl/layout.cl`` for values of ``dtype`` (`launch.value_kernel`)."""
    return launch.value_kernel(dev, FAMILY, name, dtype, extra)


def strided_copy(x: CLArray, shape: tuple, strides: tuple) -> CLArray:
    """A contiguous array of ``shape`` whose element at index i is x at the strided offset of i."""
    out = empty(x.dev, shape, x.dtype)
    n = math.prod(shape)
    if not n:
        return out
    dims, (st,) = collapse(shape, strides)
    rows = n // dims[-1]
    if dims[-1] >= ROW_MIN and rows >= ROW_MIN:
        run_1d(x.dev, value_kernel(x.dev, "copy_rows_k", x.dtype), rows, x.buf, out.buf, i32(rows),
               int8(dims), int8(st), i32(0))
    else:
        run_1d(x.dev, value_kernel(x.dev, "copy_k", x.dtype), n, x.buf, out.buf, i32(n), int8(dims), int8(st),
               i32(0))
    return out


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


def slice(x: CLArray, *, starts: tuple, ends: tuple, axes: tuple, steps: tuple) -> CLArray:  # noqa: A001
    """``x[start:end:step]`` on every axis (the schema resolved them), copied out."""
    own = contiguous_strides(x.shape)
    shape = tuple(len(range(b, -1 if e is None else e, s)) for b, e, s in zip(starts, ends, steps))
    out = empty(x.dev, shape, x.dtype)
    n = out.size
    if n:
        dims, (st,) = collapse(shape, tuple(o * s for o, s in zip(own, steps)))
        first = sum(b * o for b, o in zip(starts, own))
        run_1d(x.dev, value_kernel(x.dev, "copy_from_k", x.dtype), n, x.buf, out.buf, i32(n), int8(dims),
               int8(st), i32(first))
    return out


def concat(*xs: CLArray, axis: int) -> CLArray:
    """The inputs joined along ``axis``: each written into its place in the output."""
    first = xs[0]
    shape = first.shape[:axis] + (sum(x.shape[axis] for x in xs),) + first.shape[axis + 1:]
    out = empty(first.dev, shape, first.dtype)
    strides = contiguous_strides(shape)
    start = 0
    for x in xs:
        if x.size:
            dims, (st,) = collapse(x.shape, strides)
            run_1d(x.dev, value_kernel(x.dev, "store_k", x.dtype), x.size, x.buf, out.buf, i32(x.size),
                   int8(dims), int8(st), i32(start * strides[axis]))
        start += x.shape[axis]
    return out


def pad(x: CLArray, *, pads: tuple, mode: str, value: float) -> CLArray:
    """x padded by ``pads`` ((before, after) per axis) in ``mode``."""
    shape = tuple(d + a + b for d, (a, b) in zip(x.shape, pads))
    out = empty(x.dev, shape, x.dtype)
    n = out.size
    if n:
        front = MAX_RANK - len(shape)
        run_1d(x.dev, value_kernel(x.dev, "pad_k", x.dtype), n, x.buf, out.buf, i32(n),
               int8((1,) * front + shape), int8((1,) * front + x.shape), int8((0,) * front + tuple(a for a, _ in pads)),
               int8((0,) * front + contiguous_strides(x.shape)), i32(PAD_MODES[mode]), scalar(value, x.dtype))
    return out


def _blocks(shape: tuple, axis: int, k: int) -> tuple[int, int]:
    """(outer, inner): the element counts before ``axis`` and after the ``k`` axes from it."""
    return math.prod(shape[:axis]), math.prod(shape[axis + k:])


def gather(x: CLArray, indices: CLArray, *, axis: int) -> CLArray:
    """``numpy.take(x, indices, axis)``: one work-item per output element."""
    shape = x.shape[:axis] + indices.shape + x.shape[axis + 1:]
    out = empty(x.dev, shape, x.dtype)
    if out.size:
        _, inner = _blocks(x.shape, axis, 1)
        knl = value_kernel(x.dev, "gather_k", x.dtype, f"-D IDX_T={cl_type(indices.dtype)}")
        run_1d(x.dev, knl, out.size, x.buf, indices.buf, out.buf, i32(out.size), i32(indices.size),
               i32(x.shape[axis]), i32(inner))
    return out


def scatter_add(updates: CLArray, indices: CLArray, *, axis: int, size: int) -> CLArray:
    """Zeros with ``size`` along ``axis``, each slice of ``updates`` added at its index (repeated indices
    accumulate, in index order): the indices are read back and stably sorted on the host, so each
    output element sums its own segment (deterministic, no float atomics)."""
    k = indices.ndim
    shape = updates.shape[:axis] + (size,) + updates.shape[axis + k:]
    dev = updates.dev
    if not indices.size or not math.prod(shape):
        return from_numpy(np.zeros(shape, updates.dtype), dev.index)
    idx = to_numpy(indices).reshape(-1).astype(np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    perm = np.argsort(idx, kind="stable").astype(np.int32)
    start = np.concatenate(([0], np.cumsum(np.bincount(idx, minlength=size)))).astype(np.int32)
    perm_d, start_d = from_numpy(perm, dev.index), from_numpy(start, dev.index)
    out = empty(dev, shape, updates.dtype)
    _, inner = _blocks(updates.shape, axis, k)
    run_1d(dev, value_kernel(dev, "scatter_add_k", updates.dtype), out.size, updates.buf, perm_d.buf,
           start_d.buf, out.buf, i32(out.size), i32(indices.size), i32(size), i32(inner))
    return out


KERNELS = {"reshape": reshape, "flatten": flatten, "transpose": transpose, "broadcast_to": broadcast_to,
           "pad": pad, "slice": slice, "concat": concat, "gather": gather, "scatter_add": scatter_add}

_VALUES = ("float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel: layout moves values of any dtype (bool as uchar); scatter_add
sums, so it takes no bool."""
DTYPES["scatter_add"] = _VALUES
