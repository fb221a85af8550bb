"""matmul (numpy.matmul semantics) on a register-blocked batched GEMM kernel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import CLArray, empty
from .launch import i32, kernel
from .layout import broadcast_to
from .runtime import DeviceState, round_up

FAMILY = "linalg"
RM = 8  # rows per work-item; a work-item covers RM x 2*VW outputs (16 vector accumulators)
K_SLICE = 256  # contraction slice per launch


def vector_width(dtype: Any) -> int:
    """Vector width of the B rows: 256-bit vectors (wider double vectors break PoCL's x86 codegen)."""
    return 32 // np.dtype(dtype).itemsize


@dataclass(frozen=True)
class Operand:
    """One GEMM operand in a buffer: base offset, batch strides (b1, b2) and element strides."""

    buf: Any
    offset: int = 0
    s1: int = 0
    s2: int = 0
    row: int = 0  # stride between rows (m for A, k for B, m for C)
    col: int = 1  # stride between columns (A only: k)
    panel: int = 0  # C only: columns per panel (0: no split) ...
    panel_stride: int = 0  # ... and the distance between panels


def options(dtype: Any) -> str:
    """Build options of the GEMM program."""
    return f"-D RM={RM} -D VW={vector_width(dtype)}"


def _local(dev: DeviceState, knl: Any) -> tuple[int, int, int]:
    limit = dev.local_size(knl, 64)
    lx = 1
    while lx * lx < limit:
        lx *= 2
    return lx, max(limit // lx, 1), 1


def gemm(dev: DeviceState, dtype: Any, m: int, n: int, k: int, a: Operand, b: Operand, c: Operand,
         batch: tuple[int, int] = (1, 1), accumulate: bool = False) -> None:
    """C[b] (+)= A[b] @ B[b] over a (b1, b2) batch grid; see ``cl/linalg.cl``. The contraction runs
    in slices of `K_SLICE` (one launch each, accumulating) so a work-item's B panel stays in cache."""
    knl = kernel(dev, FAMILY, "gemm", dtype, options(dtype))
    lx, ly, lz = _local(dev, knl)
    grid = (round_up(-(-m // RM), lx), round_up(-(-n // (2 * vector_width(dtype))), ly), batch[0] * batch[1])
    for k0 in range(0, max(k, 1), K_SLICE):
        kc = min(K_SLICE, k - k0)
        dev.launch(knl, grid, (lx, ly, lz), i32(m), i32(n), i32(kc),
                   a.buf, i32(a.offset + k0 * a.col), i32(a.row), i32(a.col), i32(a.s1), i32(a.s2),
                   b.buf, i32(b.offset + k0 * b.row), i32(b.row), i32(b.s1), i32(b.s2),
                   c.buf, i32(c.offset), i32(c.row), i32(c.s1), i32(c.s2),
                   i32(c.panel or max(n, 1)), i32(c.panel_stride), i32(batch[1]), i32(int(accumulate or k0 > 0)))


def _batch_shape(a: tuple, b: tuple) -> tuple:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(a, b))


def _batched(x: CLArray, shape2: tuple, batch: tuple) -> tuple[CLArray, int]:
    """``x`` viewed as (batch..., rows, cols) and its batch stride (0 when shared by every batch)."""
    own = x.shape[:-2] if len(x.shape) > 2 else ()
    if math.prod(own) == 1:
        return x, 0
    full = (1,) * (len(batch) - len(own)) + own
    if full != batch:
        x = broadcast_to(x.view(own + shape2), shape=batch + shape2)
    return x, shape2[0] * shape2[1]


def matmul(a: CLArray, b: CLArray) -> CLArray:
    """numpy.matmul: 1-D operands promoted, batch dimensions broadcast."""
    dev = a.dev
    sa = a.shape if a.ndim > 1 else (1,) + a.shape
    sb = b.shape if b.ndim > 1 else b.shape + (1,)
    m, k = sa[-2:]
    n = sb[-1]
    batch = _batch_shape(sa[:-2], sb[:-2])
    out_shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    out = empty(dev, out_shape, a.dtype)
    nb = math.prod(batch)
    if out.size == 0:
        return out
    av, sta = _batched(a.view(sa), (m, k), batch)
    bv, stb = _batched(b.view(sb), (k, n), batch)
    gemm(dev, a.dtype, m, n, k, Operand(av.buf, 0, sta, 0, k, 1), Operand(bv.buf, 0, stb, 0, n),
         Operand(out.buf, 0, m * n, 0, n), batch=(nb, 1))
    return out


KERNELS = {"matmul": matmul}
