"""Reductions (sum, mean, max, min) and the gradients of max and min, all as row kernels over a
(rows, K) view whose K axis holds the reduced elements (moved last by one strided copy when they
are not already the trailing axes); max and min of int and bool tensors use the value-type row
kernels of ``cl/compare.cl``, and argmax / argmin walk x in place (kernels there too).
`to_rows`, `row_local` and `inverse` also serve the softmax family (`nn`)."""

from __future__ import annotations

import math
from typing import Sequence

from .arrays import CLArray, empty
from .compare import value_kernel
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
    extra = () if kind in ("max", "min") else (scalar(k if divide else 1, x.dtype),)
    values = x.dtype.kind != "f"  # int or bool max / min
    name = f"{kind}_values_rows" if values else f"{kind}_rows"

    def knl_for(variant: str):
        return value_kernel(dev, variant, x.dtype) if values else kernel(dev, FAMILY, variant, x.dtype)

    if k <= SEQ_MAX_K:
        run_1d(dev, knl_for(name + "_seq"), m, rows2d.buf, out.buf, i32(k), *extra, i32(m))
    else:
        run_rows(dev, knl_for(name), m, rows2d.buf, out.buf, i32(k), *extra, want=row_local(k))
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


def min_(x: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """Minimum over ``axis`` (NaN propagates)."""
    return _reduce(x, axis, keepdims, "min", divide=False)


def max_backward(x: CLArray, dy: CLArray, *, axis: tuple, keepdims: bool, kind: str = "max") -> CLArray:
    """dy of each reduced slice split equally among its maxima (``kind`` "min": its minima)."""
    dev = x.dev
    rows2d, perm, _ = to_rows(x, axis)
    m, k = rows2d.shape
    out = empty(dev, rows2d.shape, x.dtype)
    knl = kernel(dev, FAMILY, f"{kind}_backward_rows", x.dtype)
    run_rows(dev, knl, m, rows2d.buf, dy.buf, out.buf, i32(k), want=row_local(k))
    return permute(out.view(tuple(x.shape[a] for a in perm)), inverse(perm))


def min_backward(x: CLArray, dy: CLArray, *, axis: tuple, keepdims: bool) -> CLArray:
    """dy of each reduced slice split equally among its minima."""
    return max_backward(x, dy, axis=axis, keepdims=keepdims, kind="min")


def _arg(name: str, x: CLArray, axis, keepdims: bool) -> CLArray:
    """argmax / argmin as an (outer, K, inner) walk of x in place (no copy): axis None is the
    flattened x, one axis splits the shape around it. int64 results."""
    if axis is None:
        outer, k, inner = 1, x.size, 1
        shape: tuple = (1,) * x.ndim if keepdims else ()
    else:
        outer, k, inner = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
        shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape) if keepdims or i != axis)
    out = empty(x.dev, shape, "int64")
    n = outer * inner
    if n:
        run_1d(x.dev, value_kernel(x.dev, name, x.dtype), n, x.buf, out.buf, i32(k), i32(inner), i32(n))
    return out


def argmax(x: CLArray, *, axis, keepdims: bool) -> CLArray:
    """Index of the first maximum (or first NaN) along ``axis`` (None: the flattened x)."""
    return _arg("argmax_k", x, axis, keepdims)


def argmin(x: CLArray, *, axis, keepdims: bool) -> CLArray:
    """Index of the first minimum (or first NaN) along ``axis`` (None: the flattened x)."""
    return _arg("argmin_k", x, axis, keepdims)


KERNELS = {"sum": sum_, "mean": mean, "max": max_, "max_backward": max_backward, "min": min_,
           "min_backward": min_backward, "argmax": argmax, "argmin": argmin}
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(("argmax", "argmin"), ("float32", "float64", "int32", "int64"))
DTYPES.update(dict.fromkeys(("max", "min"), ("float32", "float64", "int32", "int64", "bool")))
"""Kernels that compute in more than the backend's float dtypes (argmax / argmin of int tensors, max / min
of int and bool ones)."""
