"""max_pool2d and avg_pool2d and their gradients as oneDNN pooling primitives.

The max-pooling gradient runs the forward pass again in training mode, for oneDNN's workspace (which
input of each window was its maximum), then the backward primitive on it. ceil_mode becomes a larger
right/bottom padding; for average pooling that counts padding, oneDNN's divisor (the whole window)
would count ceil_mode's overhang, which opdispatch's does not, so those calls are declined.

oneDNN's max pooling skips NaN (its comparisons are false for NaN), where opdispatch's maximum is NaN
for a window holding one (and its gradient goes to that NaN). An input holding NaN, found by one
``x.max()`` (a reduction that propagates NaN, at memory speed), runs the NumPy backend's kernel instead.
"""

from __future__ import annotations

from math import prod
from typing import Any, Callable, Optional, Sequence

import numpy as np
from opdispatch.shapes import output_hw
from opdispatch_numpy import pool as numpy_pool

from . import library as L
from .conv import _empty
from .primitives import (CACHE, CHANNELS_LAST, PLAIN, Attr, Primitive, PrimitiveDesc, accepted, any_layout,
                         contiguous, described, dims, empty)


def _out_shape(x_shape, a: dict) -> tuple[int, ...]:
    oh, ow = output_hw(x_shape[2:], a["kernel_size"], a["stride"], a["padding"], a.get("dilation", (1, 1)),
                       a["ceil_mode"])
    return tuple(x_shape[:2]) + (oh, ow)


def _right_pads(x_shape, a: dict) -> tuple[int, int]:
    """The bottom/right padding oneDNN needs for opdispatch's output size (ceil_mode's overhang added)."""
    out = _out_shape(x_shape, a)[2:]
    dil = a.get("dilation", (1, 1))
    pads = []
    for axis in (0, 1):
        span = (a["kernel_size"][axis] - 1) * dil[axis] + 1
        needed = (out[axis] - 1) * a["stride"][axis] + span - x_shape[2 + axis] - a["padding"][axis][0]
        pads.append(max(needed, a["padding"][axis][1]))
    return pads[0], pads[1]


def _alg(op: str, a: dict) -> int:
    if op.startswith("max"):
        return L.POOLING_MAX
    return L.POOLING_AVG_INCLUDE_PADDING if a["count_include_pad"] else L.POOLING_AVG_EXCLUDE_PADDING


def _geometry(x_shape, a: dict) -> tuple[Any, ...]:
    dil = a.get("dilation", (1, 1))
    return (dims(a["stride"]), dims(a["kernel_size"]), dims((dil[0] - 1, dil[1] - 1)),
            dims((a["padding"][0][0], a["padding"][1][0])), dims(_right_pads(x_shape, a)))


def _forward_pd(lib: L.Library, op: str, x_shape, a: dict, prop: int, attr: Optional[Attr],
                layouts: tuple[str, str] = (PLAIN, PLAIN)) -> PrimitiveDesc:
    """The forward pooling's descriptor: on x's memory as it is (``layouts[0]``), writing y channels-last
    when ``layouts[1]`` says so (else in the layout oneDNN prefers)."""
    y_shape = _out_shape(x_shape, a)
    src = described(lib, x_shape, layouts[0])
    dst = described(lib, y_shape, CHANNELS_LAST) if layouts[1] == CHANNELS_LAST else any_layout(lib, y_shape)
    geo = _geometry(x_shape, a)
    return PrimitiveDesc(lib, lambda out: lib.dnnl_pooling_forward_primitive_desc_create(
        out, lib.engine, prop, _alg(op, a), src.handle, dst.handle, *geo, attr.handle if attr else None),
        "pooling forward")


def _forward(op: str, x_shape, a: dict, layouts: tuple[str, str] = (PLAIN, PLAIN)) -> Primitive:
    lib = L.load()
    pd = _forward_pd(lib, op, x_shape, a, L.FORWARD_INFERENCE, Attr(lib), layouts)
    return Primitive(lib, pd, {L.ARG_SRC: described(lib, x_shape, layouts[0]),
                               L.ARG_DST: described(lib, _out_shape(x_shape, a), layouts[1])}, inputs=(L.ARG_SRC,))


def _backward(op: str, x_shape, a: dict, layouts: tuple[str, str] = (PLAIN, PLAIN)
              ) -> tuple[Optional[Primitive], Primitive]:
    """(the forward pass that fills the workspace, or None for average pooling; the backward pass), for x
    and dx in ``layouts[0]`` and dy in ``layouts[1]``."""
    lib = L.load()
    hint = _forward_pd(lib, op, x_shape, a, L.FORWARD_TRAINING, Attr(lib), (layouts[0], PLAIN))
    first = None
    if op.startswith("max"):
        first = Primitive(lib, hint, {L.ARG_SRC: described(lib, x_shape, layouts[0])}, inputs=(L.ARG_SRC,),
                          extra=(L.ARG_DST, L.ARG_WORKSPACE))
    dx, dy = described(lib, x_shape, layouts[0]), any_layout(lib, _out_shape(x_shape, a))
    attr = Attr(lib)
    geo = _geometry(x_shape, a)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_pooling_backward_primitive_desc_create(
        out, lib.engine, _alg(op, a), dx.handle, dy.handle, *geo, hint.handle, attr.handle), "pooling backward")
    back = Primitive(lib, pd, {L.ARG_DIFF_SRC: described(lib, x_shape, layouts[0]),
                               L.ARG_DIFF_DST: described(lib, _out_shape(x_shape, a), layouts[1])},
                     inputs=(L.ARG_DIFF_DST,), extra=(L.ARG_WORKSPACE,) if first is not None else ())
    return first, back


def _key(op: str, x_shape, a: dict) -> tuple:
    return (op, tuple(x_shape)) + tuple(sorted((k, v) for k, v in a.items() if k != "input_shape"))


def _padding_only_window(x_shape, a: dict) -> bool:
    """Whether some (dilated) window's taps all land in the padding (opdispatch's maximum is then -inf;
    oneDNN has no such window)."""
    out = _out_shape(x_shape, a)[2:]
    dil = a.get("dilation", (1, 1))
    for axis in (0, 1):
        size, k, s, lo = x_shape[2 + axis], a["kernel_size"][axis], a["stride"][axis], a["padding"][axis][0]
        for o in range(out[axis]):
            if not any(0 <= o * s - lo + t * dil[axis] < size for t in range(k)):
                return True
    return False


def _decline(op: str, x_shape, a: dict) -> Optional[str]:
    if op.startswith("max") and _padding_only_window(x_shape, a):
        return "a dilated window that sees only padding (oneDNN has no -inf for it)"
    if op.startswith("avg") and a["ceil_mode"] and a["count_include_pad"] \
            and _right_pads(x_shape, a) != (a["padding"][0][1], a["padding"][1][1]):
        return ("ceil_mode windows past the padding with count_include_pad: oneDNN's divisor would count "
                "the overhang")
    return None


def _primitive(op: str, x_shape, a: dict, layouts: tuple[str, str] = (PLAIN, PLAIN), reason: bool = False) -> Any:
    """The cached primitive(s) of ``op`` for x of ``x_shape`` (x side and y side in ``layouts``); with
    ``reason``, instead why oneDNN cannot build them (None when it can)."""
    key = _key(op, x_shape, a) + (layouts,)
    build = (lambda: _backward(op, x_shape, a, layouts)) if op.endswith("backward") else \
        (lambda: _forward(op, x_shape, a, layouts))
    return CACHE.reason(key, build) if reason else CACHE.get(key, build)


def _run_forward(op: str, x: np.ndarray, a: dict, layout: str) -> np.ndarray:
    x, x_layout = accepted(x)
    layouts = (x_layout, CHANNELS_LAST if layout == CHANNELS_LAST else PLAIN)
    try:
        p = _primitive(op, x.shape, a, layouts)
    except L.OneDNNError:  # not for these layouts (supports() checked the plain ones)
        x, layouts = contiguous(x), (PLAIN, PLAIN)
        p = _primitive(op, x.shape, a)
    y_shape = _out_shape(x.shape, a)
    p.check_fits(op, 4 * prod(y_shape))
    y = empty(y_shape, layouts[1])
    p.run({L.ARG_SRC: x, L.ARG_DST: y})
    return y


def _supports(op: str, x_of: Callable[[Sequence[Any], dict], Any]) -> Callable[[Sequence[Any], dict], Optional[str]]:
    def supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
        x_shape = tuple(x_of(metas, attrs))
        if 0 in x_shape:
            return "an empty tensor (oneDNN is not called for no work)"
        return _empty(metas) or _decline(op, x_shape, attrs) or _primitive(op, x_shape, attrs, reason=True)
    return supports


def _has_nan(x: np.ndarray) -> bool:
    return bool(np.isnan(x.max()))


def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode, layout=""):
    a = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation,
         "ceil_mode": ceil_mode}
    if _has_nan(x):
        return numpy_pool.max_pool2d(x, **a)
    return _run_forward("max_pool2d", x, a, layout)


def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, layout=""):
    a = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode,
         "count_include_pad": count_include_pad}
    return _run_forward("avg_pool2d", x, a, layout)


def max_pool2d_backward(x, dy, *, kernel_size, stride, padding, dilation, ceil_mode):
    a = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation,
         "ceil_mode": ceil_mode}
    if _has_nan(x):
        return numpy_pool.max_pool2d_backward(x, dy, **a)
    (x, x_layout), (dy, dy_layout) = accepted(x), accepted(dy)  # channels-last ones as they are
    try:
        first, back = _primitive("max_pool2d_backward", x.shape, a, (x_layout, dy_layout))
    except L.OneDNNError:  # not for these layouts (supports() checked the plain ones)
        x, dy, x_layout = contiguous(x), contiguous(dy), PLAIN
        first, back = _primitive("max_pool2d_backward", x.shape, a)
    first.check_fits("max_pool2d_backward", 4 * x.size)
    first.run({L.ARG_SRC: x})
    dx = empty(x.shape, x_layout)
    back.run({L.ARG_DIFF_SRC: dx, L.ARG_DIFF_DST: dy})
    return dx


def avg_pool2d_backward(dy, *, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    a = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode,
         "count_include_pad": count_include_pad}
    dy, dy_layout = accepted(dy)
    try:
        _, back = _primitive("avg_pool2d_backward", input_shape, a, (PLAIN, dy_layout))
    except L.OneDNNError:
        dy = contiguous(dy)
        _, back = _primitive("avg_pool2d_backward", input_shape, a)
    back.check_fits("avg_pool2d_backward", 4 * prod(input_shape))
    dx = np.empty(input_shape, np.float32)
    back.run({L.ARG_DIFF_SRC: dx, L.ARG_DIFF_DST: dy})
    return dx


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    "max_pool2d": (max_pool2d, _supports("max_pool2d", lambda m, a: m[0].shape)),
    "avg_pool2d": (avg_pool2d, _supports("avg_pool2d", lambda m, a: m[0].shape)),
    "max_pool2d_backward": (max_pool2d_backward, _supports("max_pool2d_backward", lambda m, a: m[0].shape)),
    "avg_pool2d_backward": (avg_pool2d_backward, _supports("avg_pool2d_backward", lambda m, a: a["input_shape"])),
}
"""op -> (kernel, supports) for float32 on numpy:0."""

CHANNELS_LAST_OPS = frozenset({"max_pool2d", "avg_pool2d"})
"""The kernels that write their result channels-last when a graph asks and read a channels-last x as it is."""
