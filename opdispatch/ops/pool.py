"""The pool family over NCHW input: max_pool2d, avg_pool2d and their gradients, and
adaptive_avg_pool2d (PyTorch's rule), a decomposition: avg_pool2d where the sizes divide,
otherwise one sliced sum per output row and column.

max and average pooling decompose into window taps written with ops (a pad with -inf or 0 and
one strided slice per tap) combined by a max reduction or a sum; the average-pooling gradient
scatters each tap back with slice adjoints. The max-pooling gradient (first maximum of each
window) has no decomposition: a device runs it with its own kernel (or, when max_pool2d itself
was decomposed, autodiff differentiates the decomposition, whose max splits exact ties equally).
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference
from ..attrs import INT_MAX, KernelForm, _is_int, is_ints, to_bool, to_padding, to_pair
from ..errors import ShapeError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta
from ..shapes import effective_kernel, output_hw, resolve_padding
from ._checks import SHAPE4, float_inputs, require_dy, require_positive_dims_but_batch, require_rank, shape4
from ._rules import without
from ._windows import scatter_taps, stacked, window_taps
from .conv import check_window_fits

FAMILY = "pool"


def _stride(op, arg, value):
    return None if value is None else to_pair(op, arg, value)


def infer_pool(op, metas, attrs):
    """Validate a pooling of x (``metas[0]``); return its output meta and kernel attributes."""
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_positive_dims_but_batch(op, "x", x)
    kernel = attrs["kernel_size"]
    stride = attrs["stride"] if attrs["stride"] is not None else kernel
    dilation = attrs.get("dilation", (1, 1))
    hw = x.shape[2:]
    pads = resolve_padding(attrs["padding"], hw, kernel, stride, dilation)
    for axis, (side_a, side_b) in enumerate(pads):
        span = effective_kernel(kernel[axis], dilation[axis])
        if side_a >= span or side_b >= span:
            raise arg_error(op, "padding", attrs["padding"] if attrs["padding"] == "SAME" else pads,
                            f"each side smaller than the window span {span} on the "
                            f"{('height', 'width')[axis]} axis, so every window covers some input",
                            ShapeError)
    check_window_fits(op, "kernel_size", kernel, hw, kernel, dilation, pads, "window")
    oh, ow = output_hw(hw, kernel, stride, pads, dilation, attrs["ceil_mode"])
    kattrs = dict(attrs, stride=stride, padding=pads)
    return [TensorMeta(x.shape[:2] + (oh, ow), dtype)], kattrs


def _window(metas, attrs):
    return attrs["kernel_size"][0] * attrs["kernel_size"][1]


STRIDE_ATTR = Attr("stride", None, _stride, KernelForm("(h, w): a tuple of two ints >= 1 (pooling's None arrives "
                                                       "as kernel_size)", lambda v, m: is_ints(v, 2, 1)))
MAX_POOL_ATTRS = (Attr("kernel_size", None, to_pair), STRIDE_ATTR, Attr("padding", 0, to_padding),
                  Attr("dilation", 1, to_pair), Attr("ceil_mode", False, to_bool))
AVG_POOL_ATTRS = (Attr("kernel_size", None, to_pair), STRIDE_ATTR, Attr("padding", 0, to_padding),
                  Attr("ceil_mode", False, to_bool), Attr("count_include_pad", True, to_bool))


# -- decompositions ---------------------------------------------------------------------------

def _max_pool2d(F, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out_hw = output_hw(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    taps = window_taps(F, x, kernel_size, stride, dilation, padding, out_hw, fill=-math.inf)
    return taps[0] if len(taps) == 1 else F.max(stacked(F, taps, 4), axis=4)


def _divisor(F, like, hw, attrs: dict):
    """The (OH, OW) divisors of average pooling an input of spatial size ``hw``, computed on the host
    from the shapes, as a tensor on the device (and of the dtype) of ``like``."""
    div = reference.pool.avg_pool_divisor(hw, **attrs)
    return F.tensor(div, dtype=like.dtype, device=like.device)


def _avg_pool2d(F, x, **attrs):
    a = attrs
    out_hw = output_hw(x.shape[2:], a["kernel_size"], a["stride"], a["padding"], (1, 1), a["ceil_mode"])
    taps = window_taps(F, x, a["kernel_size"], a["stride"], (1, 1), a["padding"], out_hw)
    total = taps[0]
    for t in taps[1:]:
        total = total + t
    return total / _divisor(F, x, x.shape[2:], a)


def _avg_pool2d_backward(F, dy, *, input_shape, **attrs):
    a = attrs
    share = dy / _divisor(F, dy, input_shape[2:], a)
    taps = [share] * (a["kernel_size"][0] * a["kernel_size"][1])
    return scatter_taps(F, taps, input_shape, a["kernel_size"], a["stride"], (1, 1), a["padding"], dy.shape[2:])


# -- gradient rules -------------------------------------------------------------------------------

def _max_pool2d_vjp(F, rec, grads):
    return [F.max_pool2d_backward(rec.inputs[0], grads[0], **rec.attrs)]


def _avg_pool2d_vjp(F, rec, grads):
    return [F.avg_pool2d_backward(grads[0], input_shape=rec.inputs[0].shape, **rec.attrs)]


def _avg_pool2d_backward_vjp(F, rec, grads):
    """avg_pool2d_backward is linear in dy; its adjoint is avg_pool2d itself."""
    return [F.avg_pool2d(grads[0], **without(rec.attrs, "input_shape"))]


# -- schemas ------------------------------------------------------------------------------------

MAX_POOL2D = OpSchema(
    name="max_pool2d", family=FAMILY,
    inputs=(Input("x"),),
    attrs=MAX_POOL_ATTRS,
    infer=infer_pool,
    reference=reference.pool.max_pool2d,
    doc="Maximum over each (dilated) window; padding counts as -inf.",
    vjp=_max_pool2d_vjp,
    decomposition=Decomposition(_max_pool2d, uses=("pad", "slice", "reshape", "concat", "max")),
)

AVG_POOL2D = OpSchema(
    name="avg_pool2d", family=FAMILY,
    inputs=(Input("x"),),
    attrs=AVG_POOL_ATTRS,
    infer=infer_pool,
    reference=reference.pool.avg_pool2d,
    doc="Mean over each window; count_include_pad picks the divisor (see API.md).",
    reduction_length=_window,
    vjp=_avg_pool2d_vjp,
    decomposition=Decomposition(_avg_pool2d, uses=("pad", "slice", "add", "div")),
)


def _infer_max_pool_backward(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    outs, kattrs = infer_pool(op, [x], attrs)
    require_rank(op, "dy", dy, 4, "(N, C, OH, OW)")
    require_dy(op, dy, outs[0].shape, f"max_pool2d(x of shape {x.shape}) with these attributes")
    return [TensorMeta(x.shape, dtype)], kattrs


def _infer_avg_pool_backward(op, metas, attrs):
    (dy,) = metas
    dtype = float_inputs(op, [("dy", dy)])
    require_rank(op, "dy", dy, 4, "(N, C, OH, OW)")
    x = TensorMeta(attrs["input_shape"], dtype)
    outs, kattrs = infer_pool(op, [x], attrs)
    require_dy(op, dy, outs[0].shape, f"avg_pool2d(x of shape {x.shape}) with these attributes")
    return [x], kattrs


MAX_POOL2D_BACKWARD = OpSchema(
    name="max_pool2d_backward", family=FAMILY,
    inputs=(Input("x"), Input("dy")),
    attrs=MAX_POOL_ATTRS,
    infer=_infer_max_pool_backward,
    reference=reference.pool.max_pool2d_backward,
    doc="Gradient of max_pool2d: each window's dy goes to its first maximal input element (row-major), "
        "accumulated over overlapping windows; padding gets nothing.",
    reduction_length=_window,
    no_vjp="max_pool2d_backward has no gradient rule yet (second derivatives through max pooling)",
)

AVG_POOL2D_BACKWARD = OpSchema(
    name="avg_pool2d_backward", family=FAMILY,
    inputs=(Input("dy"),),
    attrs=(Attr("input_shape", None, shape4("(N, C, H, W)", empty_batch=True), SHAPE4),) + AVG_POOL_ATTRS,
    infer=_infer_avg_pool_backward,
    reference=reference.pool.avg_pool2d_backward,
    doc="Gradient of avg_pool2d: each window's dy over its divisor, spread over its real input elements.",
    reduction_length=_window,
    vjp=_avg_pool2d_backward_vjp,
    decomposition=Decomposition(_avg_pool2d_backward, uses=("div", "pad", "slice", "reshape", "add")),
)


# -- adaptive_avg_pool2d ---------------------------------------------------------------------------

def _output_size(op, arg, value):
    """An int or an (h, w) pair, each an int >= 1 or None (that axis keeps the input size)."""
    items = (value, value) if _is_int(value) else value
    if isinstance(items, (tuple, list)) and len(items) == 2 \
            and all(v is None or (_is_int(v) and 1 <= v <= INT_MAX) for v in items):
        return tuple(None if v is None else int(v) for v in items)
    raise arg_error(op, arg, value, f"an int in [1, {INT_MAX}] or a pair (h, w) of such ints or None (None: "
                    "that axis keeps the input size)")


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's windows: output i averages input [floor(i * size / out), ceil((i + 1) * size / out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _infer_adaptive(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_positive_dims_but_batch(op, "x", x)
    out_hw = tuple(x.shape[2 + a] if v is None else v for a, v in enumerate(attrs["output_size"]))
    return [TensorMeta(x.shape[:2] + out_hw, dtype)], dict(attrs, output_size=out_hw)


def _adaptive_kernel(hw, out_hw):
    """avg_pool2d's kernel (= stride) where each output size divides its input size, else None."""
    if hw[0] % out_hw[0] or hw[1] % out_hw[1]:
        return None
    return hw[0] // out_hw[0], hw[1] // out_hw[1]


def _pool_attrs(kernel):
    return {"kernel_size": kernel, "stride": kernel, "padding": ((0, 0), (0, 0)), "ceil_mode": False,
            "count_include_pad": True}


def _window_sums(F, x, axis: int, windows):
    """Each window's sum along ``axis`` (kept as size 1), concatenated: one slice and one sum per window."""
    if all(e - s == 1 for s, e in windows) and len(windows) == x.shape[axis]:
        return x  # identity windows
    parts = [F.sum(F.slice(x, starts=(s,), ends=(e,), axes=(axis,)), axis=axis, keepdims=True) for s, e in windows]
    return parts[0] if len(parts) == 1 else F.concat(parts, axis=axis)


def _window_spread(F, g, axis: int, windows, size: int):
    """The adjoint of `_window_sums`: window i's values broadcast over its span along ``axis`` and added
    where the windows overlap (one zero pad per window)."""
    if all(e - s == 1 for s, e in windows) and len(windows) == size:
        return g
    total = None
    lead = ((0, 0),) * (3 - axis)
    for i, (s, e) in enumerate(windows):
        piece = F.slice(g, starts=(i,), ends=(i + 1,), axes=(axis,))
        shape = tuple(e - s if a == axis else d for a, d in enumerate(g.shape))
        piece = F.pad(F.broadcast_to(piece, shape), ((s, size - e),) + lead)
        total = piece if total is None else total + piece
    return total


def _adaptive_divisor(F, like, hw, out_hw):
    lh = [e - s for s, e in adaptive_windows(hw[0], out_hw[0])]
    lw = [e - s for s, e in adaptive_windows(hw[1], out_hw[1])]
    return F.tensor(np.outer(lh, lw), dtype=like.dtype, device=like.device)


def _adaptive_avg_pool2d(F, x, *, output_size):
    hw = x.shape[2:]
    kernel = _adaptive_kernel(hw, output_size)
    if kernel is not None:
        return F.avg_pool2d(x, **_pool_attrs(kernel))
    rows = _window_sums(F, x, 2, adaptive_windows(hw[0], output_size[0]))
    sums = _window_sums(F, rows, 3, adaptive_windows(hw[1], output_size[1]))
    return sums / _adaptive_divisor(F, x, hw, output_size)


def _adaptive_avg_pool2d_vjp(F, rec, grads):
    """Linear in x: each output's gradient over its window's size, spread over the window (avg_pool2d's
    gradient where the sizes divide)."""
    x = rec.inputs[0]
    out_hw = rec.attrs["output_size"]
    hw = x.shape[2:]
    kernel = _adaptive_kernel(hw, out_hw)
    if kernel is not None:
        return [F.avg_pool2d_backward(grads[0], input_shape=x.shape, **_pool_attrs(kernel))]
    g = grads[0] / _adaptive_divisor(F, grads[0], hw, out_hw)
    g = _window_spread(F, g, 3, adaptive_windows(hw[1], out_hw[1]), hw[1])
    return [_window_spread(F, g, 2, adaptive_windows(hw[0], out_hw[0]), hw[0])]


def _adaptive_terms(metas, attrs):
    hw = metas[0].shape[2:]
    return max(e - s for s, e in adaptive_windows(hw[0], attrs["output_size"][0])) * \
        max(e - s for s, e in adaptive_windows(hw[1], attrs["output_size"][1]))


ADAPTIVE_AVG_POOL2D = OpSchema(
    name="adaptive_avg_pool2d", family=FAMILY,
    inputs=(Input("x"),),
    attrs=(Attr("output_size", None, _output_size,
                KernelForm("(h, w): a tuple of two ints >= 1 (None arrives resolved to the input's size)",
                           lambda v, m: is_ints(v, 2, 1))),),
    infer=_infer_adaptive,
    reference=reference.pool.adaptive_avg_pool2d,
    doc="Mean of x (N, C, H, W) over PyTorch's adaptive windows: output (i, j) averages rows "
        "[floor(i*H/OH), ceil((i+1)*H/OH)) and columns alike; (1, 1) is global average pooling.",
    reduction_length=_adaptive_terms,
    vjp=_adaptive_avg_pool2d_vjp,
    decomposition=Decomposition(_adaptive_avg_pool2d, uses=("avg_pool2d", "slice", "sum", "concat", "div")),
)
