"""conv2d: NCHW input, OIHW weights, cross-correlation as in every DL framework."""

from __future__ import annotations

from .. import reference
from ..attrs import INT_MAX, to_int, to_padding, to_pair
from ..errors import ShapeError
from ..schema import Attr, Input, OpSchema, TensorMeta
from ..shapes import effective_kernel, output_hw, resolve_padding
from ._checks import float_inputs, require_positive_dims, require_rank


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
            raise ShapeError(f"{op}: argument {arg!r} got {value}: the {what} {name} spans {span} (size {kernel[axis]}, dilation "
                             f"{dilation[axis]}) but the padded input {name} is {padded} "
                             f"(input {hw[axis]}, padding {pads[axis]}); allowed: a span <= the padded input")


def _infer(op, metas, attrs):
    x, w, bias = metas
    dtype = float_inputs(op, [("x", x), ("w", w), ("bias", bias)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_rank(op, "w", w, 4, "(C_out, C_in / groups, KH, KW)")
    require_positive_dims(op, "x", x)
    require_positive_dims(op, "w", w)
    c_out = w.shape[0]
    if bias is not None:
        require_rank(op, "bias", bias, 1, "(C_out,)")
        if bias.shape[0] != c_out:
            raise ShapeError(f"{op}: argument 'bias' got shape {bias.shape}; allowed: ({c_out},), one per filter")
    pads, out_shape = conv_geometry(op, x.shape, w.shape, attrs, "x", "w")
    return [TensorMeta(out_shape, dtype)], dict(attrs, padding=pads)


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


def _reduction_length(metas, attrs):
    w = metas[1]
    return w.shape[1] * w.shape[2] * w.shape[3] + (metas[2] is not None)


CONV2D = OpSchema(
    name="conv2d",
    inputs=(Input("x"), Input("w"), Input("bias", optional=True)),
    attrs=(Attr("stride", 1, to_pair), Attr("padding", 0, to_padding), Attr("dilation", 1, to_pair),
           Attr("groups", 1, lambda op, arg, v: to_int(op, arg, v, minimum=1))),
    infer=_infer,
    reference=reference.conv2d,
    doc="2-D cross-correlation of x (N, C, H, W) with w (C_out, C/groups, KH, KW), plus bias.",
    reduction_length=_reduction_length,
)
