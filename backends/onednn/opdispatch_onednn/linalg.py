"""matmul (numpy.matmul semantics) as a oneDNN matmul primitive.

1-D operands are promoted as NumPy does ((K,) -> (1, K) for a, (K, 1) for b) and the batch
dimensions are padded with leading ones to one rank; oneDNN's matmul broadcasts batch dimensions of
size 1 itself. An operand that is a strided view (the transposes the matmul gradient makes) is passed
with its strides when they are positive element multiples, so no copy is made; oneDNN declining such a
layout sends the call to a C-contiguous copy.

`supports()` declines by shape where OpenBLAS through NumPy measured faster here
(``bench/onednn_kernels.py``, the ``matmul_*`` rows): see `slower_than_numpy`.
"""

from __future__ import annotations

from math import prod
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import library as L
from .conv import _empty
from .primitives import CACHE, Attr, Primitive, PrimitiveDesc, contiguous, strided

DECLINE_SLOWER = True
"""Whether `supports()` declines the shapes `slower_than_numpy` names (tests turn it off to run the
kernel on small shapes)."""

MIN_MACS = 1 << 20
"""Multiply-adds (batch x M x N x K) below which NumPy's kernel runs: there the call's fixed costs
(binding, waking oneDNN's OpenMP team) outweigh the work. Measured with the ``matmul_*`` rows of
``bench/onednn_kernels.py`` (paired, 5 ms pauses between calls, load 0.8 on the 2 cores): 8^3 to 64^3
1.5x-2.7x NumPy's time (60-90 us against 40 us); with ``OPENBLAS_NUM_THREADS=1`` (see below) 256 x (16x16
@ 16x16) 0.87x, 256^3 0.58x, 1024^3 0.33x, 128x800 @ 800x500 0.46x, its transposed-view gradient
0.42x, 16x(128x64 @ 64x128) 0.56x, 8x128x64 @ 64x256 0.66x. 1024^3 against multi-threaded OpenBLAS,
back to back: 0.59x.

With OpenBLAS multi-threaded, the bench's rows for the larger products read oneDNN 13x-40x *slower*
(256^3: 7.9 ms against 0.20 ms): after a multi-threaded call OpenBLAS's worker thread keeps spinning
for a while on one of the two cores, and the next oneDNN call's OpenMP team, statically split in two,
waits for a time slice. That is an interaction of the two thread pools, not oneDNN's speed; serving
the large products here makes such alternation rarer."""


def _shapes(a_shape, b_shape) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(a, b, dst) shapes of equal rank >= 2 as oneDNN sees them."""
    sa = tuple(a_shape) if len(a_shape) > 1 else (1,) + tuple(a_shape)
    sb = tuple(b_shape) if len(b_shape) > 1 else tuple(b_shape) + (1,)
    rank = max(len(sa), len(sb))
    sa, sb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    batch = tuple(max(x, y) for x, y in zip(sa[:-2], sb[:-2]))
    return sa, sb, batch + (sa[-2], sb[-1])


def _element_strides(arr: np.ndarray, shape: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    """``arr``'s strides in elements as an array of ``shape`` (leading ones added), or None when it is
    C-contiguous already or its layout is not one oneDNN takes (a zero or negative stride)."""
    if arr.flags.c_contiguous or arr.dtype != np.float32 or arr.ndim < 2:
        return None
    st = [s // 4 for s in arr.strides]
    if any(s % 4 for s in arr.strides) or any(s <= 0 and d > 1 for s, d in zip(st, arr.shape)):
        return None
    st = [s if d > 1 else 1 for s, d in zip(st, arr.shape)]
    return (1,) * (len(shape) - len(st)) + tuple(st)


def _c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= d
    return tuple(reversed(out))


def _build(sa, sb, sd, a_strides, b_strides) -> Primitive:
    lib = L.load()
    src, wts, dst = strided(lib, sa, a_strides), strided(lib, sb, b_strides), strided(lib, sd, _c_strides(sd))
    attr = Attr(lib)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_matmul_primitive_desc_create(
        out, lib.engine, src.handle, wts.handle, None, dst.handle, attr.handle), "matmul")
    user = {L.ARG_SRC: strided(lib, sa, a_strides), L.ARG_WEIGHTS: strided(lib, sb, b_strides),
            L.ARG_DST: strided(lib, sd, _c_strides(sd))}
    return Primitive(lib, pd, user, inputs=(L.ARG_SRC, L.ARG_WEIGHTS))


def _primitive(sa, sb, sd, a_strides=None, b_strides=None) -> Primitive:
    a_strides, b_strides = a_strides or _c_strides(sa), b_strides or _c_strides(sb)
    return CACHE.get(("matmul", sa, sb, a_strides, b_strides), lambda: _build(sa, sb, sd, a_strides, b_strides))


def slower_than_numpy(sa, sb, sd) -> Optional[str]:
    """Why NumPy's kernel (OpenBLAS) runs this shape, or None where oneDNN measured at least as fast."""
    m, k, n = sa[-2], sa[-1], sb[-1]
    if m == 1 or n == 1:
        return (f"a matrix-vector product ({m}x{k} @ {k}x{n}): OpenBLAS's gemv through NumPy measured faster "
                f"(1.2x-2.7x oneDNN's time for 1024 @ 1024x1024 and 256 @ 256x256)")
    macs = prod(sd[:-2]) * m * n * k
    if macs < MIN_MACS:
        return (f"a small product ({macs} multiply-adds, under {MIN_MACS}): NumPy's kernel measured faster "
                f"(oneDNN's fixed per-call cost dominates)")
    return None


def supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    a, b = metas
    reason = _empty(metas)
    if reason:
        return reason
    sa, sb, sd = _shapes(a.shape, b.shape)
    if len(sd) > L.MAX_NDIMS:
        return f"a result of rank {len(sd)} (oneDNN takes at most {L.MAX_NDIMS} dimensions)"
    reason = slower_than_numpy(sa, sb, sd) if DECLINE_SLOWER else None
    if reason:
        return reason
    try:
        _primitive(sa, sb, sd)
    except L.OneDNNError as exc:
        return str(exc)
    return None


def matmul(a, b):
    sa, sb, sd = _shapes(a.shape, b.shape)
    a_strides, b_strides = _element_strides(a, sa), _element_strides(b, sb)
    p = None
    if a_strides or b_strides:
        try:
            p = _primitive(sa, sb, sd, a_strides, b_strides)
        except L.OneDNNError:
            a_strides = b_strides = None
    if p is None or not a_strides:
        a = contiguous(a)
    if p is None or not b_strides:
        b = contiguous(b)
    if p is None:
        p = _primitive(sa, sb, sd)
    p.check_fits("matmul", 4 * prod(sd))
    y = np.empty(sd, np.float32)
    p.run({L.ARG_SRC: a, L.ARG_WEIGHTS: b, L.ARG_DST: y})
    out = sd[:-2] + (sd[-2],) * (len(a.shape) > 1) + (sd[-1],) * (len(b.shape) > 1)
    return y.reshape(out)


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    "matmul": (matmul, supports),
}
"""op -> (kernel, supports) for float32 on numpy:0."""
