"""Layout kernels: reshape and flatten are views of the same buffer; transpose, broadcast_to and slice
copy through strided-gather kernels, concat through a strided store, pad through its own kernel."""

from __future__ import annotations

import math
from typing import Sequence

from .arrays import MAX_RANK, CLArray, broadcast_strides, collapse, contiguous_strides, empty, int8
from .elementwise import FAMILY, strided_copy
from .launch import i32, kernel, run_1d, scalar

PAD_MODES = {"constant": 0, "reflect": 1, "edge": 2}


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
        run_1d(x.dev, kernel(x.dev, FAMILY, "strided_copy_from", x.dtype), n, x.buf, out.buf, i32(n), int8(dims),
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
            run_1d(x.dev, kernel(x.dev, FAMILY, "strided_store", x.dtype), x.size, x.buf, out.buf, i32(x.size),
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
        run_1d(x.dev, kernel(x.dev, FAMILY, "pad_nd", x.dtype), n, x.buf, out.buf, i32(n),
               int8((1,) * front + shape), int8((1,) * front + x.shape), int8((0,) * front + tuple(a for a, _ in pads)),
               int8((0,) * front + contiguous_strides(x.shape)), i32(PAD_MODES[mode]), scalar(value, x.dtype))
    return out


KERNELS = {"reshape": reshape, "flatten": flatten, "transpose": transpose, "broadcast_to": broadcast_to,
           "pad": pad, "slice": slice, "concat": concat}
