"""conv2d (with bias; ``conv2d_bias_relu`` adds the relu), its input gradient and its weight gradient
as oneDNN convolution primitives (forward inference, backward data, backward weights).

conv2d_bias_relu's relu is not oneDNN's relu post-op: that one (``max(x, 0)`` in the JIT kernels) turns
NaN into 0, where opdispatch's relu keeps NaN; NumPy's ``maximum`` runs in place on the result instead.

The weights' reorder into oneDNN's blocked layout is made once per weight array (eager and graph mode
alike: a tensor's data is immutable) and kept while that array lives.
Groups become oneDNN's 5-D grouped weights (G, O/G, I/G, KH, KW), which is OIHW memory as it stands;
dilation is oneDNN's zero-based dilation (``d - 1``); asymmetric padding is its (left, right) pair.
"""

from __future__ import annotations

import builtins
import functools
import weakref
from math import prod
from typing import Any, Callable, Optional, Sequence

import numpy as np
from opdispatch.shapes import output_hw

from . import library as L
from .primitives import (BOUNDS, CACHE, CHANNELS_LAST, PLAIN, Attr, MemoryDesc, Primitive, PrimitiveDesc, accepted,
                         any_layout, contiguous, described, dims, empty, plain, strided)


def _weight_dims(w_shape: Sequence[int], groups: int) -> tuple[int, ...]:
    o, i, kh, kw = w_shape
    return tuple(w_shape) if groups == 1 else (groups, o // groups, i, kh, kw)


def _geometry(stride, padding, dilation) -> tuple[Any, Any, Any, Any]:
    (pt, pb), (pl, pr) = padding
    return (dims(stride), dims((dilation[0] - 1, dilation[1] - 1)), dims((pt, pl)), dims((pb, pr)))


def _out_shape(x_shape, w_shape, stride, padding, dilation) -> tuple[int, ...]:
    oh, ow = output_hw(x_shape[2:], w_shape[2:], stride, padding, dilation)
    return (x_shape[0], w_shape[0], oh, ow)


def _forward_pd(lib: L.Library, x_shape, w_shape, has_bias: bool, stride, padding, dilation, groups,
                prop: int, attr: Optional[Attr], src_layout: str = "", dst_layout: str = "") -> PrimitiveDesc:
    """The forward convolution's descriptor; ``CHANNELS_LAST`` for ``src_layout``/``dst_layout`` makes
    the primitive itself work on that memory (else oneDNN chooses the layout)."""
    y_shape = _out_shape(x_shape, w_shape, stride, padding, dilation)
    src = described(lib, x_shape, CHANNELS_LAST) if src_layout == CHANNELS_LAST else any_layout(lib, x_shape)
    dst = described(lib, y_shape, CHANNELS_LAST) if dst_layout == CHANNELS_LAST else any_layout(lib, y_shape)
    wts = any_layout(lib, _weight_dims(w_shape, groups))
    bias = plain(lib, (w_shape[0],)) if has_bias else None
    geo = _geometry(stride, padding, dilation)
    return PrimitiveDesc(lib, lambda out: lib.dnnl_convolution_forward_primitive_desc_create(
        out, lib.engine, prop, L.CONVOLUTION_DIRECT, src.handle, wts.handle, bias.handle if bias else None,
        dst.handle, *geo, attr.handle if attr else None), "convolution forward")


SLOW_IMPLS = ("ref",)
"""Implementations that a channels-last primitive must not fall to: the layout oneDNN chooses (with its
reorders) runs instead."""


def _forward(x_shape, w_shape, has_bias, stride, padding, dilation, groups, src_layout: str = PLAIN,
             dst_layout: str = PLAIN, clip: Optional[tuple[float, float]] = None) -> Primitive:
    """The forward primitive for arrays in ``src_layout`` (x) and ``dst_layout`` (y): with a channels-last
    one, the convolution on channels-last memory (no reorder for it) unless oneDNN has only a reference
    implementation for that. ``clip``: (min, max) applied inside as oneDNN's clip post-op."""
    lib = L.load()
    post = (L.ELTWISE_CLIP_V2, clip[0], clip[1]) if clip is not None else None
    pd = None
    if CHANNELS_LAST in (src_layout, dst_layout):
        pd = _forward_pd(lib, x_shape, w_shape, has_bias, stride, padding, dilation, groups, L.FORWARD_INFERENCE,
                         Attr(lib, post), src_layout, dst_layout)
        if pd.impl().startswith(SLOW_IMPLS):
            pd = None
    if pd is None:
        pd = _forward_pd(lib, x_shape, w_shape, has_bias, stride, padding, dilation, groups, L.FORWARD_INFERENCE,
                         Attr(lib, post))
    user: dict[int, MemoryDesc] = {
        L.ARG_SRC: described(lib, x_shape, src_layout), L.ARG_WEIGHTS: plain(lib, _weight_dims(w_shape, groups)),
        L.ARG_DST: described(lib, _out_shape(x_shape, w_shape, stride, padding, dilation), dst_layout)}
    if has_bias:
        user[L.ARG_BIAS] = plain(lib, (w_shape[0],))
    p = Primitive(lib, pd, user, inputs=(L.ARG_SRC, L.ARG_WEIGHTS, L.ARG_BIAS), constant=(L.ARG_WEIGHTS,))
    p.out_shape = _out_shape(x_shape, w_shape, stride, padding, dilation)
    return p


def _backward(kind: str, x_shape, w_shape, stride, padding, dilation, groups, x_layout: str = PLAIN,
              y_layout: str = PLAIN) -> Primitive:
    """conv2d's input gradient ("conv2d_backward_input": dx from dy and w) or weight gradient
    ("conv2d_backward_weight": dw from x and dy), for x or dx in ``x_layout`` and dy in ``y_layout``."""
    lib = L.load()
    hint = _forward_pd(lib, x_shape, w_shape, False, stride, padding, dilation, groups, L.FORWARD_TRAINING, None)
    y_shape = _out_shape(x_shape, w_shape, stride, padding, dilation)
    x_md, y_md = any_layout(lib, x_shape), any_layout(lib, y_shape)
    w_md = any_layout(lib, _weight_dims(w_shape, groups))
    attr, geo = Attr(lib), _geometry(stride, padding, dilation)
    if kind == "conv2d_backward_input":
        pd = PrimitiveDesc(lib, lambda out: lib.dnnl_convolution_backward_data_primitive_desc_create(
            out, lib.engine, L.CONVOLUTION_DIRECT, x_md.handle, w_md.handle, y_md.handle, *geo, hint.handle,
            attr.handle), "convolution backward data")
        x_arg, w_arg = L.ARG_DIFF_SRC, L.ARG_WEIGHTS
        inputs, constant = (L.ARG_WEIGHTS, L.ARG_DIFF_DST), (L.ARG_WEIGHTS,)
    else:
        pd = PrimitiveDesc(lib, lambda out: lib.dnnl_convolution_backward_weights_primitive_desc_create(
            out, lib.engine, L.CONVOLUTION_DIRECT, x_md.handle, w_md.handle, None, y_md.handle, *geo, hint.handle,
            attr.handle), "convolution backward weights")
        x_arg, w_arg = L.ARG_SRC, L.ARG_DIFF_WEIGHTS
        inputs, constant = (L.ARG_SRC, L.ARG_DIFF_DST), ()
    user = {x_arg: described(lib, x_shape, x_layout), w_arg: plain(lib, _weight_dims(w_shape, groups)),
            L.ARG_DIFF_DST: described(lib, y_shape, y_layout)}
    return Primitive(lib, pd, user, inputs=inputs, constant=constant)


def _primitive(kind: str, x_shape, w_shape, a: dict, has_bias: bool = False, reason: bool = False,
               layouts: tuple[str, str] = (PLAIN, PLAIN), clip: Optional[tuple[float, float]] = None) -> Any:
    """The cached primitive of ``kind`` ("conv2d", "conv2d_backward_input" or "conv2d_backward_weight")
    for input shape ``x_shape`` and weight shape ``w_shape`` with attributes ``a``, for arrays of the x side
    (x or dx) and the y side (y or dy) in ``layouts``; with ``reason``, instead why oneDNN cannot build it
    (None when it can)."""
    geometry = (a["stride"], a["padding"], a["dilation"], a["groups"])
    key = (kind, tuple(x_shape), tuple(w_shape), has_bias, *geometry, clip, layouts)

    def build() -> Primitive:
        if kind == "conv2d":
            return _forward(x_shape, w_shape, has_bias, *geometry, *layouts, clip=clip)
        return _backward(kind, x_shape, w_shape, *geometry, *layouts)
    return CACHE.reason(key, build) if reason else CACHE.get(key, build)


def _empty(metas: Sequence[Any]) -> Optional[str]:
    for m in metas:
        if m is not None and 0 in m.shape:
            return "an empty tensor (oneDNN is not called for no work)"
    return None


def forward_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    x, w, bias = metas
    return _empty(metas) or _primitive("conv2d", x.shape, w.shape, attrs, bias is not None, reason=True)


def _run_forward(op: str, x, w, bias, attrs: dict, layout: str,
                 clip: Optional[tuple[float, float]] = None) -> np.ndarray:
    x, x_layout = accepted(x)
    y_layout = CHANNELS_LAST if layout == CHANNELS_LAST else PLAIN
    try:
        p = _primitive("conv2d", x.shape, w.shape, attrs, bias is not None, layouts=(x_layout, y_layout), clip=clip)
    except L.OneDNNError:  # not for these layouts (supports() checked the plain ones)
        if clip is not None:
            raise
        x, x_layout, y_layout = contiguous(x), PLAIN, PLAIN
        p = _primitive("conv2d", x.shape, w.shape, attrs, bias is not None)
    y_shape = p.out_shape
    p.check_fits(op, 4 * prod(y_shape))
    y = empty(y_shape, y_layout)
    arrays = {L.ARG_SRC: x, L.ARG_WEIGHTS: contiguous(w), L.ARG_DST: y}
    if bias is not None:
        arrays[L.ARG_BIAS] = contiguous(bias)
    p.run(arrays)
    return y


def conv2d(x, w, bias=None, *, stride, padding, dilation, groups, layout=""):
    return _run_forward("conv2d", x, w, bias, {"stride": stride, "padding": padding, "dilation": dilation,
                                               "groups": groups}, layout)


def conv2d_bias_relu(x, w, bias=None, *, stride, padding, dilation, groups, layout=""):
    y = _run_forward("conv2d_bias_relu", x, w, bias, {"stride": stride, "padding": padding, "dilation": dilation,
                                                      "groups": groups}, layout)
    return np.maximum(y, np.float32(0), out=y)


NO_OVERFLOW = 1e37
"""A bound on |conv2d's result| below which float32 sums cannot overflow (FLT_MAX is 3.4e38)."""


def _weight_bound(w: np.ndarray, bias: Optional[np.ndarray]) -> float:
    """max over filters of sum |w|, plus max |bias| (NaN or inf when they hold one), kept per weight array."""
    key = (id(w), None if bias is None else id(bias))  # the entry goes when either array does
    hit = _WEIGHT_BOUNDS.get(key)
    if hit is None:
        with np.errstate(invalid="ignore", over="ignore"):
            hit = float(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1, dtype=np.float64).max(initial=0.0))
            hit += 0.0 if bias is None else float(np.abs(bias).max(initial=0.0))
        _WEIGHT_BOUNDS[key] = hit
        for a in (w, bias):
            if a is not None:
                weakref.finalize(a, _WEIGHT_BOUNDS.pop, key, None)
    return hit


_WEIGHT_BOUNDS: dict[tuple, float] = {}  # (id(w), id(bias)) -> _weight_bound


def conv2d_bias_clip(x, w, bias=None, *, stride, padding, dilation, groups, min, max, layout=""):  # noqa: A002
    """clip(conv2d(x, w, bias), min, max) with the clip inside the convolution (oneDNN's clip post-op)
    where that is exact: min <= max, and x, w and bias finite with |conv2d| provably below `NO_OVERFLOW`
    (then no NaN can reach the post-op, which would turn one into min). x's bound is known without a
    pass when x is a clip's result (`BOUNDS`). Otherwise the conv, then np.clip over its result."""
    a = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    post, bound = _clip_limits(min, max)
    if post is not None and BOUNDS.of(x) * _weight_bound(w, bias) < NO_OVERFLOW:
        try:
            y = _run_forward("conv2d_bias_clip", x, w, bias, a, layout, clip=post)
        except L.OneDNNError:
            pass
        else:
            if bound is not None:
                BOUNDS.record(y, bound)
            return y
    y = _run_forward("conv2d_bias_clip", x, w, bias, a, layout)
    return np.clip(y, None if min is None else np.float32(min), None if max is None else np.float32(max), out=y)


@functools.lru_cache(maxsize=256)
def _clip_limits(min: Optional[float], max: Optional[float]) -> tuple[Optional[tuple[float, float]],  # noqa: A002
                                                                       Optional[float]]:
    """For clip(min, max) (None: unbounded): the clip post-op's (alpha, beta) (None when min > max: the
    post-op would not give np.clip's result) and the bound on |result| (None when a side is unbounded)."""
    lo = -np.inf if min is None else float(np.float32(min))
    hi = np.inf if max is None else float(np.float32(max))
    if not lo <= hi:
        return None, None
    bound = builtins.max(abs(lo), abs(hi)) if np.isfinite(lo) and np.isfinite(hi) else None
    return (_finite(lo), _finite(hi)), bound


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(v: float) -> float:
    """``v`` within float32's finite range (an unbounded side of the clip post-op)."""
    return builtins.min(builtins.max(v, -_FLOAT32_MAX), _FLOAT32_MAX)


def backward_input_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    dy, w = metas
    if 0 in attrs["input_shape"]:
        return "an empty tensor (oneDNN is not called for no work)"
    return _empty(metas) or _primitive("conv2d_backward_input", attrs["input_shape"], w.shape, attrs, reason=True)


def conv2d_backward_input(dy, w, *, input_shape, stride, padding, dilation, groups):
    a = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dy, dy_layout = accepted(dy)  # a channels-last dy (the layout pass's) is read as it is
    p = _primitive("conv2d_backward_input", input_shape, w.shape, a, layouts=(PLAIN, dy_layout))
    p.check_fits("conv2d_backward_input", 4 * prod(input_shape))
    dx = np.empty(input_shape, np.float32)
    p.run({L.ARG_DIFF_SRC: dx, L.ARG_WEIGHTS: contiguous(w), L.ARG_DIFF_DST: dy})
    return dx


def backward_weight_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    x, dy = metas
    return _empty(metas) or _primitive("conv2d_backward_weight", x.shape, attrs["weight_shape"], attrs, reason=True)


def conv2d_backward_weight(x, dy, *, weight_shape, stride, padding, dilation, groups):
    a = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    (x, x_layout), (dy, dy_layout) = accepted(x), accepted(dy)
    p = _primitive("conv2d_backward_weight", x.shape, weight_shape, a, layouts=(x_layout, dy_layout))
    p.check_fits("conv2d_backward_weight", 4 * prod(weight_shape))
    dw = np.empty(weight_shape, np.float32)
    p.run({L.ARG_SRC: x, L.ARG_DIFF_WEIGHTS: dw, L.ARG_DIFF_DST: dy})
    return dw


# -- conv_transpose2d: oneDNN's deconvolution primitive --
# opdispatch's w is (C_in, C_out / G, KH, KW); oneDNN's deconvolution weights are logically
# (G, O / G, I / G, KH, KW) (OIHW without groups): the same memory described with strides.
# PyTorch's output_padding adds rows/columns at the bottom/right: oneDNN's right padding is the
# bottom/right padding less it, which must stay >= 0 (else `supports()` declines).


def _transpose_weights(lib: L.Library, w_shape, groups: int) -> MemoryDesc:
    c_in, og, kh, kw = w_shape
    ig = c_in // groups
    if groups == 1:
        return strided(lib, (og, c_in, kh, kw), (kh * kw, og * kh * kw, kw, 1))
    return strided(lib, (groups, og, ig, kh, kw), (ig * og * kh * kw, kh * kw, og * kh * kw, kw, 1))


def _transpose_out_shape(x_shape, w_shape, a) -> tuple[int, ...]:
    from opdispatch.ops.conv import transpose_geometry

    out_hw, _, _, _ = transpose_geometry(x_shape[2:], w_shape[2:], a["stride"], a["padding"], a["output_padding"],
                                         a["dilation"])
    return (x_shape[0], w_shape[1] * a["groups"]) + tuple(out_hw)


def _transpose_pads(a) -> tuple[tuple[int, int], tuple[int, int]]:
    (pt, pb), (pl, pr) = a["padding"]
    oh, ow = a["output_padding"]
    return (pt, pb - oh), (pl, pr - ow)


def _transpose(x_shape, w_shape, has_bias: bool, a: dict) -> Primitive:
    lib = L.load()
    y_shape = _transpose_out_shape(x_shape, w_shape, a)
    groups = a["groups"]
    user_w = _transpose_weights(lib, w_shape, groups)
    w_dims = (w_shape[1], w_shape[0]) + tuple(w_shape[2:]) if groups == 1 else (
        groups, w_shape[1], w_shape[0] // groups) + tuple(w_shape[2:])
    src, wts, dst = any_layout(lib, x_shape), any_layout(lib, w_dims), any_layout(lib, y_shape)
    bias = plain(lib, (y_shape[1],)) if has_bias else None
    geo = _geometry(a["stride"], _transpose_pads(a), a["dilation"])
    attr = Attr(lib)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_deconvolution_forward_primitive_desc_create(
        out, lib.engine, L.FORWARD_INFERENCE, L.DECONVOLUTION_DIRECT, src.handle, wts.handle,
        bias.handle if bias else None, dst.handle, *geo, attr.handle), "deconvolution forward")
    user = {L.ARG_SRC: plain(lib, x_shape), L.ARG_WEIGHTS: user_w, L.ARG_DST: plain(lib, y_shape)}
    if has_bias:
        user[L.ARG_BIAS] = plain(lib, (y_shape[1],))
    return Primitive(lib, pd, user, inputs=(L.ARG_SRC, L.ARG_WEIGHTS, L.ARG_BIAS), constant=(L.ARG_WEIGHTS,))


def _transpose_key(x_shape, w_shape, has_bias, a) -> tuple:
    return ("conv_transpose2d", tuple(x_shape), tuple(w_shape), has_bias, a["stride"], a["padding"],
            a["output_padding"], a["dilation"], a["groups"])


def transpose_supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
    x, w, bias = metas
    reason = _empty(metas)
    if reason:
        return reason
    if min(min(p) for p in _transpose_pads(attrs)) < 0:
        return (f"output_padding {attrs['output_padding']} beyond the bottom/right padding {attrs['padding']} "
                f"(oneDNN's right padding would be negative)")
    return CACHE.reason(_transpose_key(x.shape, w.shape, bias is not None, attrs),
                        lambda: _transpose(x.shape, w.shape, bias is not None, attrs))


def conv_transpose2d(x, w, bias=None, *, stride, padding, output_padding, dilation, groups):
    a = {"stride": stride, "padding": padding, "output_padding": output_padding, "dilation": dilation,
         "groups": groups}
    p = CACHE.get(_transpose_key(x.shape, w.shape, bias is not None, a),
                  lambda: _transpose(x.shape, w.shape, bias is not None, a))
    y_shape = _transpose_out_shape(x.shape, w.shape, a)
    p.check_fits("conv_transpose2d", 4 * prod(y_shape))
    y = np.empty(y_shape, np.float32)
    arrays = {L.ARG_SRC: contiguous(x), L.ARG_WEIGHTS: contiguous(w), L.ARG_DST: y}
    if bias is not None:
        arrays[L.ARG_BIAS] = contiguous(bias)
    p.run(arrays)
    return y


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    "conv_transpose2d": (conv_transpose2d, transpose_supports),
    "conv2d": (conv2d, forward_supports),
    "conv2d_bias_relu": (conv2d_bias_relu, forward_supports),
    "conv2d_bias_clip": (conv2d_bias_clip, forward_supports),
    "conv2d_backward_input": (conv2d_backward_input, backward_input_supports),
    "conv2d_backward_weight": (conv2d_backward_weight, backward_weight_supports),
}
"""op -> (kernel, supports) for float32 on numpy:0."""

CHANNELS_LAST_OPS = frozenset({"conv2d", "conv2d_bias_relu", "conv2d_bias_clip"})
"""The kernels that write their result channels-last when a graph asks (``layout="channels_last"``) and
read a channels-last x as it is: between two of them no reorder runs (`opdispatch.graph.passes.layout`)."""
