"""batch_norm (training: batch statistics; inference: the running ones) and its gradient as oneDNN
batch-normalization primitives on x of rank 2 to 5 (N, C, ...).

Training returns the new running statistics computed from oneDNN's batch mean and (biased) variance,
as the NumPy kernel does. The training gradient needs the batch statistics: a forward pass in
training mode computes them first (its output goes to a scratch buffer). Without a weight, the
backward primitive gets a scale of ones (dweight and dbias do not depend on it).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import library as L
from .conv import _empty
from .primitives import CACHE, Attr, Primitive, PrimitiveDesc, contiguous, plain


def _flags(training: bool, scale: bool, shift: bool) -> int:
    return (0 if training else L.USE_GLOBAL_STATS) | (L.USE_SCALE if scale else 0) | (L.USE_SHIFT if shift else 0)


def _forward_pd(lib: L.Library, x_shape, eps: float, prop: int, flags: int) -> PrimitiveDesc:
    src, dst = plain(lib, x_shape), plain(lib, x_shape)
    attr = Attr(lib)
    return PrimitiveDesc(lib, lambda out: lib.dnnl_batch_normalization_forward_primitive_desc_create(
        out, lib.engine, prop, src.handle, dst.handle, eps, flags, attr.handle), "batch normalization forward")


def _forward(x_shape, training: bool, eps: float, scale: bool, shift: bool) -> Primitive:
    lib = L.load()
    prop = L.FORWARD_TRAINING if training else L.FORWARD_INFERENCE
    pd = _forward_pd(lib, x_shape, eps, prop, _flags(training, scale, shift))
    c = (x_shape[1],)
    user = {L.ARG_SRC: plain(lib, x_shape), L.ARG_DST: plain(lib, x_shape), L.ARG_MEAN: plain(lib, c),
            L.ARG_VARIANCE: plain(lib, c)}
    if scale:
        user[L.ARG_SCALE] = plain(lib, c)
    if shift:
        user[L.ARG_SHIFT] = plain(lib, c)
    inputs = (L.ARG_SRC, L.ARG_SCALE, L.ARG_SHIFT) + (() if training else (L.ARG_MEAN, L.ARG_VARIANCE))
    return Primitive(lib, pd, user, inputs=inputs)


def _backward(x_shape, training: bool, eps: float) -> tuple[Optional[Primitive], Primitive]:
    """(the forward pass computing the batch statistics, or None in inference; the backward pass)."""
    lib = L.load()
    c = (x_shape[1],)
    hint = _forward_pd(lib, x_shape, eps, L.FORWARD_TRAINING, _flags(training, True, True))
    stats = None
    if training:
        stats_pd = _forward_pd(lib, x_shape, eps, L.FORWARD_TRAINING, 0)
        stats = Primitive(lib, stats_pd, {L.ARG_SRC: plain(lib, x_shape), L.ARG_MEAN: plain(lib, c),
                                          L.ARG_VARIANCE: plain(lib, c)}, inputs=(L.ARG_SRC,), extra=(L.ARG_DST,))
    dx, dy, src = plain(lib, x_shape), plain(lib, x_shape), plain(lib, x_shape)
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
    return CACHE.get(("batch_norm", tuple(x_shape), training, eps, scale, shift),
                     lambda: _forward(x_shape, training, eps, scale, shift))


def _backward_primitives(x_shape, training, eps) -> tuple[Optional[Primitive], Primitive]:
    return CACHE.get(("batch_norm_backward", tuple(x_shape), training, eps), lambda: _backward(x_shape, training, eps))


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
