"""Backward ops: the vector-Jacobian products autodiff needs that are not compositions of forward ops.

Each is a first-class op with its own schema, reference and kernels, so every backend implements
it and the conformance suite checks it like any other op. The attributes mirror the forward op's
(same normalisers, SAME padding resolved against the forward input), plus the forward input's
shape where the backward op cannot see that input (``input_shape``, ``weight_shape``).
"""

from __future__ import annotations

from typing import Any

from .. import reference
from ..attrs import INT_MAX, _is_int, to_bool, to_float
from ..errors import ShapeError, arg_error
from ..schema import Attr, Input, OpSchema, TensorMeta, passthrough
from ..shapes import broadcast_shapes
from ._checks import float_inputs, prod, require_positive_dims, require_rank
from .conv import CONV2D, conv_geometry
from .nn import _infer_xent, label_checker
from .norm import check_batch_inputs
from .pool import AVG_POOL2D, MAX_POOL2D, _infer_pool
from .reduce import _infer as _infer_reduce


MAX_ELEMENTS = 2**60
"""Bound on the element count of a shape attribute: a float64 array of it fits an int64 byte count."""


def _shape4(what: str):
    """Normaliser of a 4-d shape attribute such as ``input_shape`` (N, C, H, W)."""

    def normalize(op: str, arg: str, value: Any) -> tuple[int, int, int, int]:
        if isinstance(value, (tuple, list)) and len(value) == 4 and all(_is_int(v) and 1 <= v <= INT_MAX
                                                                        for v in value) \
                and prod(value) < MAX_ELEMENTS:
            return tuple(int(v) for v in value)  # type: ignore[return-value]
        raise arg_error(op, arg, value, f"a sequence of 4 ints in [1, {INT_MAX}] {what}, at most {MAX_ELEMENTS - 1} "
                        f"elements in all (8-byte elements addressable in int64)")

    return normalize


def _require_dy(op: str, dy: TensorMeta, expected: tuple, forward: str) -> None:
    if tuple(dy.shape) != tuple(expected):
        raise ShapeError(f"{op}: argument 'dy' got shape {dy.shape}; allowed: {expected}, the output shape of "
                         f"{forward}")


def _infer_conv_input(op, metas, attrs):
    dy, w = metas
    dtype = float_inputs(op, [("dy", dy), ("w", w)])
    require_rank(op, "dy", dy, 4, "(N, C_out, OH, OW)")
    require_rank(op, "w", w, 4, "(C_out, C_in / groups, KH, KW)")
    require_positive_dims(op, "w", w)
    x_shape = attrs["input_shape"]
    pads, expected = conv_geometry(op, x_shape, w.shape, attrs, "input_shape", "w")
    _require_dy(op, dy, expected, f"conv2d(x of shape {x_shape}, w of shape {w.shape}) with these attributes")
    return [TensorMeta(x_shape, dtype)], dict(attrs, padding=pads)


def _infer_conv_weight(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    require_rank(op, "x", x, 4, "(N, C, H, W)")
    require_rank(op, "dy", dy, 4, "(N, C_out, OH, OW)")
    require_positive_dims(op, "x", x)
    w_shape = attrs["weight_shape"]
    pads, expected = conv_geometry(op, x.shape, w_shape, attrs, "x", "weight_shape")
    _require_dy(op, dy, expected, f"conv2d(x of shape {x.shape}, w of shape {w_shape}) with these attributes")
    return [TensorMeta(w_shape, dtype)], dict(attrs, padding=pads)


def _conv_input_terms(metas, attrs):
    c_out, _, kh, kw = metas[1].shape
    return c_out // attrs["groups"] * kh * kw


def _conv_weight_terms(metas, attrs):
    n, _, oh, ow = metas[1].shape
    return n * oh * ow


def _infer_max_pool_backward(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    outs, kattrs = _infer_pool(op, [x], attrs)
    require_rank(op, "dy", dy, 4, "(N, C, OH, OW)")
    _require_dy(op, dy, outs[0].shape, f"max_pool2d(x of shape {x.shape}) with these attributes")
    return [TensorMeta(x.shape, dtype)], kattrs


def _infer_avg_pool_backward(op, metas, attrs):
    (dy,) = metas
    dtype = float_inputs(op, [("dy", dy)])
    require_rank(op, "dy", dy, 4, "(N, C, OH, OW)")
    x = TensorMeta(attrs["input_shape"], dtype)
    outs, kattrs = _infer_pool(op, [x], attrs)
    _require_dy(op, dy, outs[0].shape, f"avg_pool2d(x of shape {x.shape}) with these attributes")
    return [x], kattrs


def _window(metas, attrs):
    return attrs["kernel_size"][0] * attrs["kernel_size"][1]


def _infer_batch_norm_backward(op, metas, attrs):
    x, dy, rm, rv, weight = metas
    named = [("running_mean", rm), ("running_var", rv), ("weight", weight)]
    dtype = float_inputs(op, [("x", x), ("dy", dy)] + named)
    check_batch_inputs(op, x, named, attrs["training"])
    if dy.shape != x.shape:
        raise ShapeError(f"{op}: argument 'dy' got shape {dy.shape}; allowed: {x.shape}, the shape of x")
    stat = TensorMeta((x.shape[1],), dtype)
    return [TensorMeta(x.shape, dtype), stat, stat], attrs


def _bn_terms(metas, attrs):
    x = metas[0]
    return x.shape[0] * prod(x.shape[2:])


def _infer_relu_backward(op, metas, attrs):
    dy, x = metas
    dtype = float_inputs(op, [("dy", dy), ("x", x)])
    if x.shape != dy.shape:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape}; allowed: {dy.shape}, the shape of dy")
    return [TensorMeta(dy.shape, dtype)], attrs


def _infer_max_backward(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    outs, kattrs = _infer_reduce(op, [x], attrs)
    _require_dy(op, dy, outs[0].shape, f"max(x of shape {x.shape}, axis={attrs['axis']!r}, "
                                       f"keepdims={attrs['keepdims']})")
    return [TensorMeta(x.shape, dtype)], kattrs


def _infer_xent_backward(op, metas, attrs):
    logits, labels, dloss = metas
    _infer_xent(op, [logits, labels], attrs)
    dtype = float_inputs(op, [("logits", logits), ("dloss", dloss)])
    require_rank(op, "dloss", dloss, 0, "(a scalar: the gradient of the mean loss)")
    return [TensorMeta(logits.shape, dtype)], attrs


def _target_shape(op: str, arg: str, value: Any) -> tuple[int, ...]:
    if _is_int(value):
        value = (value,)
    if isinstance(value, (tuple, list)) and all(_is_int(v) and 0 <= v <= INT_MAX for v in value):
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, f"a sequence of ints in [0, {INT_MAX}] (or one such int)")


def _infer_broadcast_to(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    shape = attrs["shape"]
    if prod(shape) >= MAX_ELEMENTS:
        raise arg_error(op, "shape", shape, f"at most {MAX_ELEMENTS - 1} elements in all", ShapeError)
    if len(shape) < len(x.shape) or broadcast_shapes(tuple(x.shape), shape) != shape:
        raise arg_error(op, "shape", shape, f"a shape that x of shape {x.shape} broadcasts to under NumPy rules "
                        f"(at least {len(x.shape)} dimensions; each dimension of x equal to the matching "
                        f"trailing one or 1)", ShapeError)
    return [TensorMeta(shape, dtype)], {"shape": shape}


CONV2D_BACKWARD_INPUT = OpSchema(
    name="conv2d_backward_input",
    inputs=(Input("dy"), Input("w")),
    attrs=(Attr("input_shape", None, _shape4("(N, C, H, W)")),) + CONV2D.attrs,
    infer=_infer_conv_input,
    reference=reference.conv2d_backward_input,
    doc="Gradient of conv2d with respect to x: the transposed convolution of dy with w, of input_shape.",
    reduction_length=_conv_input_terms,
)

CONV2D_BACKWARD_WEIGHT = OpSchema(
    name="conv2d_backward_weight",
    inputs=(Input("x"), Input("dy")),
    attrs=(Attr("weight_shape", None, _shape4("(C_out, C_in / groups, KH, KW)")),) + CONV2D.attrs,
    infer=_infer_conv_weight,
    reference=reference.conv2d_backward_weight,
    doc="Gradient of conv2d with respect to w: dy correlated with the windows of x, of weight_shape.",
    reduction_length=_conv_weight_terms,
)

MAX_POOL2D_BACKWARD = OpSchema(
    name="max_pool2d_backward",
    inputs=(Input("x"), Input("dy")),
    attrs=MAX_POOL2D.attrs,
    infer=_infer_max_pool_backward,
    reference=reference.max_pool2d_backward,
    doc="Gradient of max_pool2d: each window's dy goes to its first maximal input element (row-major), "
        "accumulated over overlapping windows; padding gets nothing.",
    reduction_length=_window,
)

AVG_POOL2D_BACKWARD = OpSchema(
    name="avg_pool2d_backward",
    inputs=(Input("dy"),),
    attrs=(Attr("input_shape", None, _shape4("(N, C, H, W)")),) + AVG_POOL2D.attrs,
    infer=_infer_avg_pool_backward,
    reference=reference.avg_pool2d_backward,
    doc="Gradient of avg_pool2d: each window's dy over its divisor, spread over its real input elements.",
    reduction_length=_window,
)

BATCH_NORM_BACKWARD = OpSchema(
    name="batch_norm_backward",
    inputs=(Input("x"), Input("dy"), Input("running_mean"), Input("running_var"), Input("weight", optional=True)),
    attrs=(Attr("training", False, to_bool),
           Attr("eps", 1e-5, lambda op, arg, v: to_float(op, arg, v, low=0.0, low_open=True))),
    infer=_infer_batch_norm_backward,
    reference=reference.batch_norm_backward,
    doc="Gradients (dx, dweight, dbias) of batch_norm's y; training differentiates through the batch "
        "statistics.",
    reduction_length=_bn_terms,
    tolerance_factor=4.0,
)

RELU_BACKWARD = OpSchema(
    name="relu_backward", inputs=(Input("dy"), Input("x")), attrs=(), infer=_infer_relu_backward,
    reference=reference.relu_backward, doc="dy where x > 0, else 0")

MAX_BACKWARD = OpSchema(
    name="max_backward", inputs=(Input("x"), Input("dy")),
    attrs=(Attr("axis", None, passthrough), Attr("keepdims", False, to_bool)),
    infer=_infer_max_backward, reference=reference.max_backward,
    doc="Gradient of max: dy split equally among the tied maxima of each reduced slice.")

SOFTMAX_CROSS_ENTROPY_BACKWARD = OpSchema(
    name="softmax_cross_entropy_backward",
    inputs=(Input("logits"), Input("labels", kind="int"), Input("dloss")), attrs=(),
    infer=_infer_xent_backward, reference=reference.softmax_cross_entropy_backward,
    doc="(softmax(logits) - onehot(labels)) * dloss / N",
    reduction_length=lambda metas, attrs: metas[0].shape[1], tolerance_factor=4.0,
    check_values=label_checker("softmax_cross_entropy_backward"))

BROADCAST_TO = OpSchema(
    name="broadcast_to", inputs=(Input("x"),), attrs=(Attr("shape", None, _target_shape),),
    infer=_infer_broadcast_to, reference=reference.broadcast_to,
    doc="x broadcast to shape under NumPy rules")

GRAD_OPS = (CONV2D_BACKWARD_INPUT, CONV2D_BACKWARD_WEIGHT, MAX_POOL2D_BACKWARD, AVG_POOL2D_BACKWARD,
            BATCH_NORM_BACKWARD, RELU_BACKWARD, MAX_BACKWARD, SOFTMAX_CROSS_ENTROPY_BACKWARD, BROADCAST_TO)
GRAD_OP_NAMES = tuple(s.name for s in GRAD_OPS)
