"""matmul (numpy.matmul semantics) as a oneDNN matmul primitive.

1-D operands are promoted as NumPy does ((K,) -> (1, K) for a, (K, 1) for b) and the batch
dimensions are padded with leading ones to one rank; oneDNN's matmul broadcasts batch dimensions of
size 1 itself. An operand that is a strided view (the transposes the matmul gradient makes) is passed
with its strides when they are positive element multiples, so no copy is made; oneDNN declining such a
layout sends the call to a C-contiguous copy.

`supports()` declines the small products, where OpenBLAS through NumPy runs on one thread and measured
faster here; from `MIN_MACS` oneDNN serves every product, so that two thread pools do not take turns
stalling each other (see `MIN_MACS`).
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

MIN_MACS = 300_000
"""Multiply-adds (batch x M x N x K) below which NumPy's kernel runs. Below about this OpenBLAS stays on
one thread here, and there oneDNN's fixed per-call cost (binding, waking its OpenMP team) loses: 64^3
(262k) 0.005 ms against oneDNN's 0.014 ms. Above it OpenBLAS goes multi-threaded and its pool collides
with oneDNN's: after a few oneDNN convolutions (``bench/onednn_kernels.py``'s setting, a model's
classifier after its last conv) every such OpenBLAS call measured 3.8 ms, waiting for a time slice while
oneDNN's idle OpenMP thread spins on the other core (32x128 @ 128x128, 16x256 @ 256x256, 128^3,
1 x 512 @ 512x1000, 1 x 1280 @ 1280x1000: 3.78-3.81 ms), where oneDNN took 0.018-0.055 ms; alone,
back to back, OpenBLAS was at most 1.4x faster (1 x 512 @ 512x1000: 0.019 against 0.026 ms) and slower
from 128^3 (0.030 against 0.023 ms). So oneDNN serves every product from this size, matrix-vector ones
too: one thread pool in the process. (``bench/onednn_matmul_context.py``, medians of 40 calls, load 0.4.)

The converse also holds: after a multi-threaded OpenBLAS call its worker thread keeps spinning for a
while on one of the two cores, and the next oneDNN call's OpenMP team, statically split in two, waits
for a time slice (the matmul rows of ``bench/onednn_kernels.py`` read 13x-40x slower with OpenBLAS
multi-threaded; ``OPENBLAS_NUM_THREADS=1`` removes that interaction)."""


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


def _primitive(sa, sb, sd, a_strides=None, b_strides=None, reason: bool = False) -> Any:
    """The cached primitive (with ``reason``, instead why oneDNN cannot build it; None when it can)."""
    a_strides, b_strides = a_strides or _c_strides(sa), b_strides or _c_strides(sb)
    key, build = ("matmul", sa, sb, a_strides, b_strides), lambda: _build(sa, sb, sd, a_strides, b_strides)
    return CACHE.reason(key, build) if reason else CACHE.get(key, build)


def slower_than_numpy(sa, sb, sd) -> Optional[str]:
    """Why NumPy's kernel (OpenBLAS) runs this shape, or None where oneDNN serves it (see `MIN_MACS`)."""
    macs = prod(sd[:-2]) * sa[-2] * sb[-1] * sa[-1]
    if macs < MIN_MACS:
        return (f"a small product ({macs} multiply-adds, under {MIN_MACS}): NumPy's kernel measured faster "
                f"(OpenBLAS stays on one thread; oneDNN's fixed per-call cost dominates)")
    return None


def supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    a, b = metas
    reason = _empty(metas)
    if reason:
        return reason
    sa, sb, sd = _shapes(a.shape, b.shape)
    if len(sd) > L.MAX_NDIMS:
        return f"a result of rank {len(sd)} (oneDNN takes at most {L.MAX_NDIMS} dimensions)"
    return (slower_than_numpy(sa, sb, sd) if DECLINE_SLOWER else None) or _primitive(sa, sb, sd, reason=True)


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
