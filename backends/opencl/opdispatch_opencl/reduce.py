"""Reductions (sum, mean, max) and max's gradient, all as row kernels over a (rows, K) view whose K
axis holds the reduced elements (moved last by one strided copy when they are not already the
trailing axes). `to_rows`, `row_local` and `inverse` also serve the softmax family (`nn`)."""

from __future__ import annotations

import math
from typing import Sequence

from .arrays import CLArray, empty
from .launch import i32, kernel, run_1d, run_rows, scalar
from .layout import permute

FAMILY = "reduce"
SEQ_MAX_K = 32  # rows up to this long are reduced by one work-item each


def row_local(k: int) -> int:
    """Work-group size wanted for rows of ``k`` elements (a few fixed sizes: few compiled variants)."""
    return 64 if k < 4096 else 256


def to_rows(x: CLArray, axes: Sequence[int]) -> tuple[CLArray, tuple[int, ...], tuple[int, ...]]:
    """``x`` as (rows, K) with the ``axes`` last; also the permutation used and the kept shape."""
    kept = [i for i in range(x.ndim) if i not in axes]
    perm = tuple(kept) + tuple(sorted(axes))
    k = math.prod(x.shape[a] for a in axes)
    rows = math.prod(x.shape[a] for a in kept)
    return permute(x, perm).view((rows, k)), perm, tuple(x.shape[a] for a in kept)


def _out_shape(x: CLArray, axes: Sequence[int], keepdims: bool) -> tuple[int, ...]:
    return tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keepdims or i not in axes)


def _reduce(x: CLArray, axes: Sequence[int], keepdims: bool, kind: str, divide: bool) -> CLArray:
    dev = x.dev
    rows2d, _, _ = to_rows(x, axes)
    m, k = rows2d.shape
    out = empty(dev, _out_shape(x, axes, keepdims), x.dtype)
    extra = () if kind == "max" else (scalar(k if divide else 1, x.dtype),)
    if k <= SEQ_MAX_K:
        knl = kernel(dev, FAMILY, f"{kind}_rows_seq", x.dtype)
        run_1d(dev, knl, m, rows2d.buf, out.buf, i32(k), *extra, i32(m))
    else:
        knl = kernel(dev, FAMILY, f"{kind}_rows", x.dtype)
        run_rows(dev, knl, m, rows2d.buf, out.buf, i32(k), *extra, want=row_local(k))
    return out


def sum_(x: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """Sum over ``axis``."""
    return _reduce(x, axis, keepdims, "sum", divide=False)


def mean(x: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """Mean over ``axis``."""
    return _reduce(x, axis, keepdims, "sum", divide=True)


def max_(x: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """Maximum over ``axis`` (NaN propagates)."""
    return _reduce(x, axis, keepdims, "max", divide=False)


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    """The inverse permutation."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def max_backward(x: CLArray, dy: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """dy of each reduced slice split equally among its maxima."""
    dev = x.dev
    rows2d, perm, _ = to_rows(x, axis)
    m, k = rows2d.shape
    out = empty(dev, rows2d.shape, x.dtype)
    knl = kernel(dev, FAMILY, "max_backward_rows", x.dtype)
    run_rows(dev, knl, m, rows2d.buf, dy.buf, out.buf, i32(k), want=row_local(k))
    return permute(out.view(tuple(x.shape[a] for a in perm)), inverse(perm))


KERNELS = {"sum": sum_, "mean": mean, "max": max_, "max_backward": max_backward}
