"""The conv family: conv2d (NCHW input, OIHW weights, cross-correlation as in every DL framework),
the fused conv2d_bias_relu and conv2d_bias_clip, conv2d's input and weight gradients as ops of their own, and
conv_transpose2d (PyTorch's ConvTranspose2d), the adjoint of conv2d.

Each conv2d op decomposes into im2col written with ops (a pad, one strided slice per kernel tap, a
concat) and one batched matmul, so a backend with the layout primitives and matmul runs them all.
conv_transpose2d decomposes into conv2d_backward_input (plus a zero pad for an output_padding beyond
the bottom/right padding, and the bias add), so it runs wherever that op does, with no kernel of its own.
"""

from __future__ import annotations

from .. import reference
from ..attrs import INT_MAX, OPTIONAL_FLOAT, PADDING, PAIR0, POSITIVE_INT, to_float, to_int, to_padding, to_pair
from ..errors import InvalidArgumentError, ShapeError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta
from ..shapes import effective_kernel, output_hw, resolve_padding
from ._checks import (SHAPE4, float_inputs, require_dy, require_positive_dims, require_positive_dims_but_batch,
                      require_rank, shape4)
from ._rules import without
from ._windows import scatter_taps, stacked, window_taps

FAMILY = "conv"


def check_window_fits(op: str, arg: str, value, hw, kernel, dilation, pads, what: str = "kernel") -> None:
    """Raise `ShapeError` (naming argument ``arg`` and its ``value``) when the dilated window is
    larger than the padded input."""
    for axis, name in ((0, "height"), (1, "width")):
        span = effective_kernel(kernel[axis], dilation[axis])
        padded = hw[axis] + pads[axis][0] + pads[axis][1]
        if padded > INT_MAX:
            raise ShapeError(f"{op}: argument 'padding' resolves to {pads[axis]} on the {name} axis (a {what} "
                             f"spanning {span}), a padded {name} of {padded}; allowed: at most {INT_MAX}")
        if span > padded:
            raise ShapeError(f"{op}: argument {arg!r} got {value}: the {what} {name} spans {span} "
                             f"(size {kernel[axis]}, dilation {dilation[axis]}) but the padded input {name} is "
                             f"{padded} (input {hw[axis]}, padding {pads[axis]}); allowed: a span <= the padded input")


def conv_geometry(op: str, x_shape: tuple, w_shape: tuple, attrs: dict, x_arg: str, w_arg: str):
    """Validate a conv2d of x (``x_shape``) with w (``w_shape``); return (pads, output shape)."""
    n, c_in, h, wd = x_shape
    c_out, c_per_group, kh, kw = w_shape
    groups = attrs["groups"]
    if c_in % groups or c_out % groups:
        raise ShapeError(f"{op}: argument 'groups' got {groups} but {x_arg} has {c_in} channels and {w_arg} has "
                         f"{c_out} filters; allowed: a divisor of both")
    if c_per_group * groups != c_in:
        raise ShapeError(f"{op}: argument {w_arg!r} got shape {tuple(w_shape)}: {c_per_group} input channels per "
                         f"group, but {x_arg} has {c_in} channels in {groups} group(s); allowed: "
                         f"{w_arg}[1] == {c_in // groups} (C_in / groups)")
    pads = resolve_padding(attrs["padding"], (h, wd), (kh, kw), attrs["stride"], attrs["dilation"])
    check_window_fits(op, w_arg, f"shape {tuple(w_shape)}", (h, wd), (kh, kw), attrs["dilation"], pads)
    oh, ow = output_hw((h, wd), (kh, kw), attrs["stride"], pads, attrs["dilation"])
    return pads, (n, c_out, oh, ow)


def _infer(op, metas, attrs):
    x, w, bias = metas
    dtype = float_inputs(op, [("x", x), ("w", w), ("bias", bias)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_rank(op, "w", w, 4, "(C_out, C_in / groups, KH, KW)")
    require_positive_dims_but_batch(op, "x", x)
    require_positive_dims(op, "w", w)
    c_out = w.shape[0]
    if bias is not None:
        require_rank(op, "bias", bias, 1, "(C_out,)")
        if bias.shape[0] != c_out:
            raise ShapeError(f"{op}: argument 'bias' got shape {bias.shape}; allowed: ({c_out},), one per filter")
    pads, out_shape = conv_geometry(op, x.shape, w.shape, attrs, "x", "w")
    return [TensorMeta(out_shape, dtype)], dict(attrs, padding=pads)


def _reduction_length(metas, attrs):
    w = metas[1]
    return w.shape[1] * w.shape[2] * w.shape[3] + (metas[2] is not None)


GROUPS_ATTR = Attr("groups", 1, lambda op, arg, v: to_int(op, arg, v, minimum=1), POSITIVE_INT)
CONV_ATTRS = (Attr("stride", 1, to_pair), Attr("padding", 0, to_padding), Attr("dilation", 1, to_pair), GROUPS_ATTR)


def _optional_float(op, arg, value):
    return None if value is None else to_float(op, arg, value)


CLIP_ATTRS = (Attr("min", None, _optional_float, OPTIONAL_FLOAT), Attr("max", None, _optional_float, OPTIONAL_FLOAT))
"""clip's bounds (conv2d_bias_clip's last attributes): a float or None (unbounded)."""


# -- decompositions: im2col with ops, then one batched matmul ----------------------------------

def _columns(F, x, kernel, stride, dilation, pads, out_hw):
    """x's im2col matrix (N, C * KH * KW, OH * OW), rows ordered (channel, tap) like w's columns."""
    n, c = x.shape[:2]
    taps = [F.reshape(t, (n, c, out_hw[0] * out_hw[1]))
            for t in window_taps(F, x, kernel, stride, dilation, pads, out_hw)]
    return F.reshape(stacked(F, taps, 2), (n, c * len(taps), out_hw[0] * out_hw[1]))


def _conv2d(F, x, w, bias=None, *, stride, padding, dilation, groups):
    n, c_out, (kh, kw) = x.shape[0], w.shape[0], w.shape[2:]
    oh, ow = output_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
    k = w.shape[1] * kh * kw
    cols = F.reshape(_columns(F, x, (kh, kw), stride, dilation, padding, (oh, ow)), (n, groups, k, oh * ow))
    y = F.reshape(F.matmul(F.reshape(w, (groups, c_out // groups, k)), cols), (n, c_out, oh, ow))
    return y if bias is None else y + F.reshape(bias, (c_out, 1, 1))


def _conv2d_bias_relu(F, x, w, bias=None, **attrs):
    return F.relu(F.conv2d(x, w, bias, **attrs))


def _conv2d_bias_clip(F, x, w, bias=None, *, min, max, **attrs):  # noqa: A002 - clip's attribute names
    return F.clip(F.conv2d(x, w, bias, **attrs), min=min, max=max)


def _conv2d_backward_weight(F, x, dy, *, weight_shape, stride, padding, dilation, groups):
    c_out, c_per_group, kh, kw = weight_shape
    n, (oh, ow) = x.shape[0], dy.shape[2:]
    k = c_per_group * kh * kw
    cols = F.reshape(_columns(F, x, (kh, kw), stride, dilation, padding, (oh, ow)), (n, groups, k, oh * ow))
    dyg = F.reshape(dy, (n, groups, c_out // groups, oh * ow))
    return F.reshape(F.sum(F.matmul(dyg, F.transpose(cols, (0, 1, 3, 2))), axis=0), weight_shape)


def _conv2d_backward_input(F, dy, w, *, input_shape, stride, padding, dilation, groups):
    """im2col's adjoint: w^T dy per tap, each scattered back where the tap read (slice adjoints)."""
    n, c, h, wd = input_shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    wt = F.transpose(F.reshape(w, (groups, c_out // groups, c_per_group * kh * kw)), (0, 2, 1))
    dcols = F.reshape(F.matmul(wt, F.reshape(dy, (n, groups, c_out // groups, oh * ow))), (n, c, kh * kw, oh, ow))
    taps = [F.reshape(F.slice(dcols, starts=(t,), ends=(t + 1,), axes=(2,)), (n, c, oh, ow))
            for t in range(kh * kw)]
    return scatter_taps(F, taps, input_shape, (kh, kw), stride, dilation, padding, (oh, ow))


_IM2COL = ("pad", "slice", "reshape", "concat")
CONV2D_DECOMPOSITION = Decomposition(_conv2d, uses=_IM2COL + ("matmul", "add"))


# -- gradient rules -------------------------------------------------------------------------------

def _conv2d_vjp(F, rec, grads):
    x, w, bias = rec.inputs
    (dy,) = grads
    a = rec.attrs
    dx = F.conv2d_backward_input(dy, w, input_shape=x.shape, **a) if rec.wants(0) else None
    dw = F.conv2d_backward_weight(x, dy, weight_shape=w.shape, **a) if rec.wants(1) else None
    db = F.sum(dy, axis=(0, 2, 3)) if bias is not None and rec.wants(2) else None
    return [dx, dw, db]


def _conv2d_bias_relu_vjp(F, rec, grads):
    return _conv2d_vjp(F, rec, [F.relu_backward(grads[0], rec.outputs[0])])  # y > 0 exactly where conv2d's is


def _conv2d_backward_input_vjp(F, rec, grads):
    """dx = conv2d_backward_input(dy, w) is bilinear: its adjoints are conv2d and the weight gradient."""
    dy, w = rec.inputs
    a = without(rec.attrs, "input_shape")
    g = grads[0]
    return [F.conv2d(g, w, **a) if rec.wants(0) else None,
            F.conv2d_backward_weight(g, dy, weight_shape=w.shape, **a) if rec.wants(1) else None]


def _conv2d_backward_weight_vjp(F, rec, grads):
    """dw = conv2d_backward_weight(x, dy) is bilinear: its adjoints are the input gradient and conv2d."""
    x, dy = rec.inputs
    a = without(rec.attrs, "weight_shape")
    g = grads[0]
    return [F.conv2d_backward_input(dy, g, input_shape=x.shape, **a) if rec.wants(0) else None,
            F.conv2d(x, g, **a) if rec.wants(1) else None]


# -- schemas ------------------------------------------------------------------------------------

CONV2D = OpSchema(
    name="conv2d", family=FAMILY,
    inputs=(Input("x"), Input("w"), Input("bias", optional=True)),
    attrs=CONV_ATTRS,
    infer=_infer,
    reference=reference.conv.conv2d,
    doc="2-D cross-correlation of x (N, C, H, W) with w (C_out, C/groups, KH, KW), plus bias.",
    reduction_length=_reduction_length,
    vjp=_conv2d_vjp,
    decomposition=CONV2D_DECOMPOSITION,
)

CONV2D_BIAS_RELU = OpSchema(
    name="conv2d_bias_relu", family=FAMILY, inputs=CONV2D.inputs, attrs=CONV_ATTRS, infer=_infer,
    reference=reference.conv.conv2d_bias_relu, doc="relu(conv2d(x, w, bias)) in one op (made by graph fusion)",
    reduction_length=_reduction_length, vjp=_conv2d_bias_relu_vjp,
    decomposition=Decomposition(_conv2d_bias_relu, uses=("conv2d", "relu")))

CONV2D_BIAS_CLIP = OpSchema(
    name="conv2d_bias_clip", family=FAMILY, inputs=CONV2D.inputs, attrs=CONV_ATTRS + CLIP_ATTRS, infer=_infer,
    reference=reference.conv.conv2d_bias_clip,
    doc="clip(conv2d(x, w, bias), min, max) in one op (made by graph fusion: ReLU6 after a conv)",
    reduction_length=_reduction_length,
    no_vjp="made by graph fusion only where nothing differentiates it: clip's gradient reads the conv output, "
           "which this op does not keep (differentiate conv2d and clip)",
    decomposition=Decomposition(_conv2d_bias_clip, uses=("conv2d", "clip")))


def _infer_conv_input(op, metas, attrs):
    dy, w = metas
    dtype = float_inputs(op, [("dy", dy), ("w", w)])
    require_rank(op, "dy", dy, 4, "(N, C_out, OH, OW)")
    require_rank(op, "w", w, 4, "(C_out, C_in / groups, KH, KW)")
    require_positive_dims(op, "w", w)
    x_shape = attrs["input_shape"]
    pads, expected = conv_geometry(op, x_shape, w.shape, attrs, "input_shape", "w")
    require_dy(op, dy, expected, f"conv2d(x of shape {x_shape}, w of shape {w.shape}) with these attributes")
    return [TensorMeta(x_shape, dtype)], dict(attrs, padding=pads)


def _infer_conv_weight(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_rank(op, "dy", dy, 4, "(N, C_out, OH, OW)")
    require_positive_dims_but_batch(op, "x", x)
    w_shape = attrs["weight_shape"]
    pads, expected = conv_geometry(op, x.shape, w_shape, attrs, "x", "weight_shape")
    require_dy(op, dy, expected, f"conv2d(x of shape {x.shape}, w of shape {w_shape}) with these attributes")
    return [TensorMeta(w_shape, dtype)], dict(attrs, padding=pads)


def _conv_input_terms(metas, attrs):
    c_out, _, kh, kw = metas[1].shape
    return c_out // attrs["groups"] * kh * kw


def _conv_weight_terms(metas, attrs):
    n, _, oh, ow = metas[1].shape
    return n * oh * ow


CONV2D_BACKWARD_INPUT = OpSchema(
    name="conv2d_backward_input", family=FAMILY,
    inputs=(Input("dy"), Input("w")),
    attrs=(Attr("input_shape", None, shape4("(N, C, H, W)", empty_batch=True), SHAPE4),) + CONV_ATTRS,
    infer=_infer_conv_input,
    reference=reference.conv.conv2d_backward_input,
    doc="Gradient of conv2d with respect to x: the transposed convolution of dy with w, of input_shape.",
    reduction_length=_conv_input_terms,
    vjp=_conv2d_backward_input_vjp,
    decomposition=Decomposition(_conv2d_backward_input, uses=("transpose", "reshape", "matmul", "slice", "pad",
                                                              "add")),
)

CONV2D_BACKWARD_WEIGHT = OpSchema(
    name="conv2d_backward_weight", family=FAMILY,
    inputs=(Input("x"), Input("dy")),
    attrs=(Attr("weight_shape", None, shape4("(C_out, C_in / groups, KH, KW)"), SHAPE4),) + CONV_ATTRS,
    infer=_infer_conv_weight,
    reference=reference.conv.conv2d_backward_weight,
    doc="Gradient of conv2d with respect to w: dy correlated with the windows of x, of weight_shape.",
    reduction_length=_conv_weight_terms,
    vjp=_conv2d_backward_weight_vjp,
    decomposition=Decomposition(_conv2d_backward_weight, uses=_IM2COL + ("transpose", "matmul", "sum")),
)


# -- conv_transpose2d: conv2d's adjoint in its input, as an op of its own (PyTorch's ConvTranspose2d) --

def _transpose_padding(op, arg, value):
    """Explicit padding only (an int, (ph, pw) or ((top, bottom), (left, right))): 'SAME' and 'VALID'
    are conv2d's rules for choosing padding from the input size and have no agreed transposed meaning."""
    if isinstance(value, str):
        raise arg_error(op, arg, value, f"an int in [0, {INT_MAX}], a pair (ph, pw) or ((top, bottom), "
                        "(left, right)) of such ints; 'SAME' and 'VALID' are not accepted (give the padding)")
    return to_padding(op, arg, value)


def transpose_geometry(in_hw, k_hw, stride, padding, output_padding, dilation):
    """The shapes of conv_transpose2d's decomposition, per spatial axis (height, width):
    the output size ``(in - 1) * stride - top - bottom + dilation * (k - 1) + output_padding + 1``; the
    conv2d padding (top, max(bottom - output_padding, 0)) whose input gradient of size ``inner`` it is;
    and the zero rows/columns appended after it (``output_padding - bottom`` where that is positive).
    Returns (out_hw, inner_hw, conv pads, extra)."""
    out, inner, pads, extra = [], [], [], []
    for a in range(2):
        (top, bottom), op_pad = padding[a], output_padding[a]
        full = (in_hw[a] - 1) * stride[a] + dilation[a] * (k_hw[a] - 1) + 1
        out.append(full - top - bottom + op_pad)
        pads.append((top, max(bottom - op_pad, 0)))
        extra.append(max(op_pad - bottom, 0))
        inner.append(out[a] - extra[a])
    return tuple(out), tuple(inner), tuple(pads), tuple(extra)


def _infer_conv_transpose(op, metas, attrs):
    x, w, bias = metas
    dtype = float_inputs(op, [("x", x), ("w", w), ("bias", bias)])
    require_rank(op, "x", x, 4, "(N, C_in, H, W)")
    require_rank(op, "w", w, 4, "(C_in, C_out / groups, KH, KW)")
    require_positive_dims_but_batch(op, "x", x)
    require_positive_dims(op, "w", w)
    n, c_in, h, wd = x.shape
    groups = attrs["groups"]
    if c_in % groups:
        raise ShapeError(f"{op}: argument 'groups' got {groups} but x has {c_in} channels; allowed: a divisor "
                         f"of C_in = {c_in}")
    if w.shape[0] != c_in:
        raise ShapeError(f"{op}: argument 'w' got shape {w.shape}: {w.shape[0]} input channels, but x has {c_in}; "
                         f"allowed: w[0] == {c_in} (w is (C_in, C_out / groups, KH, KW))")
    c_out = w.shape[1] * groups
    if bias is not None:
        require_rank(op, "bias", bias, 1, "(C_out,)")
        if bias.shape[0] != c_out:
            raise ShapeError(f"{op}: argument 'bias' got shape {bias.shape}; allowed: ({c_out},), one per output "
                             f"channel (w[1] * groups)")
    stride, dilation, out_pad = attrs["stride"], attrs["dilation"], attrs["output_padding"]
    for a, name in ((0, "height"), (1, "width")):
        if out_pad[a] >= stride[a] and out_pad[a] >= dilation[a]:
            raise InvalidArgumentError(
                f"{op}: argument 'output_padding' got {out_pad}: {out_pad[a]} on the {name} axis; allowed: "
                f"smaller than the stride ({stride[a]}) or the dilation ({dilation[a]}) on that axis (PyTorch's rule)")
    out_hw, inner, _, _ = transpose_geometry((h, wd), w.shape[2:], stride, attrs["padding"], out_pad, dilation)
    for a, name in ((0, "height"), (1, "width")):
        full = out_hw[a] + sum(attrs["padding"][a]) - out_pad[a]
        if out_hw[a] < 1 or inner[a] < 1 or out_hw[a] > INT_MAX:
            raise ShapeError(
                f"{op}: argument 'padding' got {attrs['padding']}: {attrs['padding'][a]} on the {name} axis leaves "
                f"{out_hw[a]} of the transposed convolution's {full} (input {(h, wd)[a]}, stride {stride[a]}, kernel "
                f"{w.shape[2 + a]}, dilation {dilation[a]}, output_padding {out_pad[a]}); allowed: an output {name} "
                f"in [1, {INT_MAX}] with the top/left padding below {full}")
    return [TensorMeta((n, c_out) + out_hw, dtype)], attrs


def _conv_transpose2d(F, x, w, bias=None, *, stride, padding, output_padding, dilation, groups):
    n, c_out = x.shape[0], w.shape[1] * groups
    _, inner, pads, extra = transpose_geometry(x.shape[2:], w.shape[2:], stride, padding, output_padding, dilation)
    y = F.conv2d_backward_input(x, w, input_shape=(n, c_out) + inner, stride=stride, padding=pads,
                                dilation=dilation, groups=groups)
    if any(extra):
        y = F.pad(y, ((0, extra[0]), (0, extra[1])))
    return y if bias is None else y + F.reshape(bias, (c_out, 1, 1))


def _conv_transpose2d_vjp(F, rec, grads):
    """y = conv2d_backward_input(x, w) (then zero-padded): dx is conv2d of dy (the padding's adjoint, a
    crop, first) with w; dw is conv2d_backward_weight with the roles of input and dy swapped (dy's windows
    correlated with x); dbias sums dy over N, H, W."""
    x, w, bias = rec.inputs
    (dy,) = grads
    a = rec.attrs
    _, inner, pads, extra = transpose_geometry(x.shape[2:], w.shape[2:], a["stride"], a["padding"],
                                               a["output_padding"], a["dilation"])
    g = F.slice(dy, starts=(0, 0), ends=inner, axes=(2, 3)) if any(extra) else dy
    conv = {"stride": a["stride"], "padding": pads, "dilation": a["dilation"], "groups": a["groups"]}
    dx = F.conv2d(g, w, **conv) if rec.wants(0) else None
    dw = F.conv2d_backward_weight(g, x, weight_shape=w.shape, **conv) if rec.wants(1) else None
    db = F.sum(dy, axis=(0, 2, 3)) if bias is not None and rec.wants(2) else None
    return [dx, dw, db]


def _transpose_terms(metas, attrs):
    c_in, _, kh, kw = metas[1].shape
    return c_in // attrs["groups"] * kh * kw + (metas[2] is not None)


CONV_TRANSPOSE2D = OpSchema(
    name="conv_transpose2d", family=FAMILY,
    inputs=(Input("x"), Input("w"), Input("bias", optional=True)),
    attrs=(Attr("stride", 1, to_pair), Attr("padding", 0, _transpose_padding, PADDING),
           Attr("output_padding", 0, lambda op, arg, v: to_pair(op, arg, v, minimum=0), PAIR0),
           Attr("dilation", 1, to_pair), GROUPS_ATTR),
    infer=_infer_conv_transpose,
    reference=reference.conv.conv_transpose2d,
    doc="Transposed convolution of x (N, C_in, H, W) with w (C_in, C_out/groups, KH, KW), plus bias: the "
        "adjoint of conv2d in its input (PyTorch's ConvTranspose2d).",
    reduction_length=_transpose_terms,
    vjp=_conv_transpose2d_vjp,
    decomposition=Decomposition(_conv_transpose2d, uses=("conv2d_backward_input", "pad", "reshape", "add")),
)
