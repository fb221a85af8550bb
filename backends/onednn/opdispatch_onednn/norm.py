"""batch_norm (training: batch statistics; inference: the running ones) and its gradient as oneDNN
batch-normalization primitives on x of rank 2 to 5 (N, C, ...).

Training returns the new running statistics computed from oneDNN's batch mean and (biased) variance,
as the NumPy kernel does. Training runs on a channels-last copy of rank-4 x (`CHANNELS_LAST`). The
training gradient needs the batch statistics: a forward pass in training mode computes them first (its
output goes to a scratch buffer). Without a weight, the
backward primitive gets a scale of ones (dweight and dbias do not depend on it).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import library as L
from .conv import _empty
from .primitives import CACHE, Attr, MemoryDesc, Primitive, PrimitiveDesc, contiguous, plain, strided

CHANNELS_LAST = True
"""Whether training-mode primitives of rank-4 x run on a channels-last (NHWC) copy of it.

On plain NCHW oneDNN v3.2 runs ``ncsp_bnorm:any``, a generic implementation; on NHWC its JIT kernel
(``bnorm_jit:avx512_core`` here), which pays for the reorders in and out in training. Paired, back to back,
15 repetitions, load 3.3 on the 2 cores, nhwc / ncsp time (median ratio; fastest call): training forward
32x64x56x56 0.87 (9.9 vs 19.5 ms), 128x32x14x14 0.65, 8x64x112x112 0.93, 128x256x7x7 0.67; backward
(training) 0.86 (22.8 vs 35.8 ms), 1.38 (fastest 0.95 vs 1.68 ms), 0.70, 0.66. Inference is a per-channel
affine map that the plain kernel does in one pass: there nhwc measured 1.96x, 0.96x, 2.54x, 1.04x, so
inference stays plain. ``bench/onednn_kernels.py --bn-layouts --reps 25`` (load 3.8), nhwc / plain: bn_train
0.75x, bn_train_bwd 0.67x, bn_train_14 0.53x, bn_train_bwd_14 0.33x (bn_eval, plain on both sides, 0.84x
[0.56-1.69]: this load's noise). A channel count that is not a multiple of 16 gets the generic
``nspc_bnorm:any`` on NHWC, not the JIT kernel: it stays plain too."""


def _layout(x_shape, training: bool) -> str:
    jit = len(x_shape) == 4 and x_shape[1] % 16 == 0  # other channel counts get nspc_bnorm:any, not the JIT
    return "nhwc" if CHANNELS_LAST and training and jit else "plain"


def _data_md(lib: L.Library, x_shape, layout: str) -> MemoryDesc:
    """The descriptor the primitive runs x-shaped data in (the caller's plain NCHW is reordered to it)."""
    if layout == "plain":
        return plain(lib, x_shape)
    n, c, h, w = x_shape
    return strided(lib, x_shape, (c * h * w, 1, w * c, c))


def _flags(training: bool, scale: bool, shift: bool) -> int:
    return (0 if training else L.USE_GLOBAL_STATS) | (L.USE_SCALE if scale else 0) | (L.USE_SHIFT if shift else 0)


def _forward_pd(lib: L.Library, x_shape, eps: float, prop: int, flags: int, layout: str) -> PrimitiveDesc:
    src, dst = _data_md(lib, x_shape, layout), _data_md(lib, x_shape, layout)
    attr = Attr(lib)
    return PrimitiveDesc(lib, lambda out: lib.dnnl_batch_normalization_forward_primitive_desc_create(
        out, lib.engine, prop, src.handle, dst.handle, eps, flags, attr.handle), "batch normalization forward")


def _forward(x_shape, training: bool, eps: float, scale: bool, shift: bool, layout: str) -> Primitive:
    lib = L.load()
    prop = L.FORWARD_TRAINING if training else L.FORWARD_INFERENCE
    pd = _forward_pd(lib, x_shape, eps, prop, _flags(training, scale, shift), layout)
    c = (x_shape[1],)
    user = {L.ARG_SRC: plain(lib, x_shape), L.ARG_DST: plain(lib, x_shape), L.ARG_MEAN: plain(lib, c),
            L.ARG_VARIANCE: plain(lib, c)}
    if scale:
        user[L.ARG_SCALE] = plain(lib, c)
    if shift:
        user[L.ARG_SHIFT] = plain(lib, c)
    inputs = (L.ARG_SRC, L.ARG_SCALE, L.ARG_SHIFT) + (() if training else (L.ARG_MEAN, L.ARG_VARIANCE))
    return Primitive(lib, pd, user, inputs=inputs)


def _backward(x_shape, training: bool, eps: float, layout: str) -> tuple[Optional[Primitive], Primitive]:
    """(the forward pass computing the batch statistics, or None in inference; the backward pass)."""
    lib = L.load()
    c = (x_shape[1],)
    hint = _forward_pd(lib, x_shape, eps, L.FORWARD_TRAINING, _flags(training, True, True), layout)
    stats = None
    if training:
        stats_pd = _forward_pd(lib, x_shape, eps, L.FORWARD_TRAINING, 0, layout)
        stats = Primitive(lib, stats_pd, {L.ARG_SRC: plain(lib, x_shape), L.ARG_MEAN: plain(lib, c),
                                          L.ARG_VARIANCE: plain(lib, c)}, inputs=(L.ARG_SRC,), extra=(L.ARG_DST,))
    dx, dy, src = (_data_md(lib, x_shape, layout) for _ in range(3))
    attr = Attr(lib)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_batch_normalization_backward_primitive_desc_create(
        out, lib.engine, L.BACKWARD, dx.handle, dy.handle, src.handle, eps, _flags(training, True, True),
        hint.handle, attr.handle), "batch normalization backward")
    user = {L.ARG_SRC: plain(lib, x_shape), L.ARG_DIFF_DST: plain(lib, x_shape), L.ARG_MEAN: plain(lib, c),
            L.ARG_VARIANCE: plain(lib, c), L.ARG_SCALE: plain(lib, c), L.ARG_DIFF_SRC: plain(lib, x_shape),
            L.ARG_DIFF_SCALE: plain(lib, c), L.ARG_DIFF_SHIFT: plain(lib, c)}
    back = Primitive(lib, pd, user, inputs=(L.ARG_SRC, L.ARG_DIFF_DST, L.ARG_MEAN, L.ARG_VARIANCE, L.ARG_SCALE))
    return stats, back


def _forward_primitive(x_shape, training, eps, scale, shift) -> Primitive:
    layout = _layout(x_shape, training)
    return CACHE.get(("batch_norm", tuple(x_shape), training, eps, scale, shift, layout),
                     lambda: _forward(x_shape, training, eps, scale, shift, layout))


def _backward_primitives(x_shape, training, eps) -> tuple[Optional[Primitive], Primitive]:
    layout = _layout(x_shape, training)
    return CACHE.get(("batch_norm_backward", tuple(x_shape), training, eps, layout),
                     lambda: _backward(x_shape, training, eps, layout))


def _rank(x_shape) -> Optional[str]:
    return None if 2 <= len(x_shape) <= 5 else f"x of rank {len(x_shape)} (oneDNN's batch norm takes rank 2 to 5)"


def forward_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    x, _, _, weight, bias = metas
    reason = _empty(metas) or _rank(x.shape)
    if reason:
        return reason
    try:
        _forward_primitive(x.shape, attrs["training"], attrs["eps"], weight is not None, bias is not None)
    except L.OneDNNError as exc:
        return str(exc)
    return None


def backward_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    x = metas[0]
    reason = _empty(metas) or _rank(x.shape)
    if reason:
        return reason
    try:
        _backward_primitives(x.shape, attrs["training"], attrs["eps"])
    except L.OneDNNError as exc:
        return str(exc)
    return None


def batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    p = _forward_primitive(x.shape, training, eps, weight is not None, bias is not None)
    c = x.shape[1]
    p.check_fits("batch_norm", 4 * x.size)
    y = np.empty(x.shape, np.float32)
    if training:
        mean, var = np.empty(c, np.float32), np.empty(c, np.float32)
    else:
        mean, var = contiguous(running_mean), contiguous(running_var)
    arrays = {L.ARG_SRC: contiguous(x), L.ARG_DST: y, L.ARG_MEAN: mean, L.ARG_VARIANCE: var}
    if weight is not None:
        arrays[L.ARG_SCALE] = contiguous(weight)
    if bias is not None:
        arrays[L.ARG_SHIFT] = contiguous(bias)
    p.run(arrays)
    if not training:
        return y
    count = x.size // c
    m = np.float32(momentum)
    new_mean = (1 - m) * running_mean + m * mean
    new_var = (1 - m) * running_var + m * var * np.float32(count / (count - 1))
    return y, new_mean.astype(np.float32, copy=False), new_var.astype(np.float32, copy=False)


def batch_norm_backward(x, dy, running_mean, running_var, weight=None, *, training, eps):
    stats, back = _backward_primitives(x.shape, training, eps)
    back.check_fits("batch_norm_backward", 4 * x.size)
    c = x.shape[1]
    x = contiguous(x)
    if stats is not None:
        mean, var = np.empty(c, np.float32), np.empty(c, np.float32)
        stats.run({L.ARG_SRC: x, L.ARG_MEAN: mean, L.ARG_VARIANCE: var})
    else:
        mean, var = contiguous(running_mean), contiguous(running_var)
    dx, dweight, dbias = np.empty(x.shape, np.float32), np.empty(c, np.float32), np.empty(c, np.float32)
    back.run({L.ARG_SRC: x, L.ARG_DIFF_DST: contiguous(dy), L.ARG_MEAN: mean, L.ARG_VARIANCE: var,
              L.ARG_SCALE: np.ones(c, np.float32) if weight is None else contiguous(weight),
              L.ARG_DIFF_SRC: dx, L.ARG_DIFF_SCALE: dweight, L.ARG_DIFF_SHIFT: dbias})
    return dx, dweight, dbias


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    "batch_norm": (batch_norm, forward_supports),
    "batch_norm_backward": (batch_norm_backward, backward_supports),
}
"""op -> (kernel, supports) for float32 on numpy:0."""
