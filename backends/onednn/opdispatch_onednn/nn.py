"""softmax and log_softmax along any axis as oneDNN softmax primitives (``softmax_accurate``: the
maximum is subtracted first; ``softmax_log``).

oneDNN's maximum skips NaN and its exp differs from opdispatch's rules on infinities; an input that is
not all finite (its sum is not, one pass; a sum that overflows only sends the call there too) runs the
NumPy backend's kernel instead."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
from opdispatch_numpy import nn as numpy_nn

from . import library as L
from .conv import _empty
from .primitives import CACHE, Attr, Primitive, PrimitiveDesc, contiguous, plain

ALGORITHMS = {"softmax": L.SOFTMAX_ACCURATE, "log_softmax": L.SOFTMAX_LOG}


def _build(op: str, shape, axis: int) -> Primitive:
    lib = L.load()
    src, dst, attr = plain(lib, shape), plain(lib, shape), Attr(lib)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_softmax_forward_primitive_desc_create(
        out, lib.engine, L.FORWARD_INFERENCE, ALGORITHMS[op], src.handle, dst.handle, axis, attr.handle),
        "softmax forward")
    return Primitive(lib, pd, {L.ARG_SRC: plain(lib, shape), L.ARG_DST: plain(lib, shape)}, inputs=(L.ARG_SRC,))


def _primitive(op: str, shape, axis: int) -> Primitive:
    return CACHE.get((op, tuple(shape), axis), lambda: _build(op, shape, axis))


def _supports(op: str) -> Callable[[Sequence[Any], dict], Optional[str]]:
    def supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
        (x,) = metas
        reason = _empty(metas)
        if reason:
            return reason
        if len(x.shape) > L.MAX_NDIMS:
            return f"x of rank {len(x.shape)} (oneDNN takes at most {L.MAX_NDIMS} dimensions)"
        try:
            _primitive(op, x.shape, attrs["axis"])
        except L.OneDNNError as exc:
            return str(exc)
        return None
    return supports


def _run(op: str, x, axis: int) -> np.ndarray:
    if not np.isfinite(x.sum()):
        return getattr(numpy_nn, op)(x, axis=axis)
    p = _primitive(op, x.shape, axis)
    p.check_fits(op, 4 * x.size)
    y = np.empty(x.shape, np.float32)
    p.run({L.ARG_SRC: contiguous(x), L.ARG_DST: y})
    return y


def softmax(x, *, axis):
    return _run("softmax", x, axis)


def log_softmax(x, *, axis):
    return _run("log_softmax", x, axis)


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    "softmax": (softmax, _supports("softmax")),
    "log_softmax": (log_softmax, _supports("log_softmax")),
}
"""op -> (kernel, supports) for float32 on numpy:0."""
