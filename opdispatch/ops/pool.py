"""max_pool2d and avg_pool2d over NCHW input."""

from __future__ import annotations

from .. import reference
from ..attrs import to_bool, to_padding, to_pair
from ..errors import arg_error, ShapeError
from ..schema import Attr, Input, OpSchema, TensorMeta
from ..shapes import effective_kernel, output_hw, resolve_padding
from ._checks import float_inputs, require_positive_dims, require_rank
from .conv import check_window_fits


def _stride(op, arg, value):
    return None if value is None else to_pair(op, arg, value)


def _infer_pool(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_positive_dims(op, "x", x)
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


MAX_POOL2D = OpSchema(
    name="max_pool2d",
    inputs=(Input("x"),),
    attrs=(Attr("kernel_size", None, to_pair), Attr("stride", None, _stride), Attr("padding", 0, to_padding),
           Attr("dilation", 1, to_pair), Attr("ceil_mode", False, to_bool)),
    infer=_infer_pool,
    reference=reference.max_pool2d,
    doc="Maximum over each (dilated) window; padding counts as -inf.",
)

AVG_POOL2D = OpSchema(
    name="avg_pool2d",
    inputs=(Input("x"),),
    attrs=(Attr("kernel_size", None, to_pair), Attr("stride", None, _stride), Attr("padding", 0, to_padding),
           Attr("ceil_mode", False, to_bool), Attr("count_include_pad", True, to_bool)),
    infer=_infer_pool,
    reference=reference.avg_pool2d,
    doc="Mean over each window; count_include_pad picks the divisor (see API.md).",
    reduction_length=_window,
)
