"""The reduce family: sum, mean and max over axes, and the gradient of max."""

from __future__ import annotations

from .. import reference
from ..attrs import to_axes, to_bool
from ..errors import ShapeError
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta, passthrough
from ._checks import float_inputs, prod, require_dy
from ._rules import count, reduced_shape

FAMILY = "reduce"


def infer_reduce(op, metas, attrs):
    """Validate a reduction of x (``metas[0]``); return its output meta and kernel attributes."""
    (x,) = metas[:1]
    dtype = float_inputs(op, [("x", x)])
    axes = to_axes(op, "axis", attrs["axis"], len(x.shape))
    if op != "sum" and any(x.shape[a] == 0 for a in axes):
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape} with an empty reduced axis; allowed: "
                         f"reduced axes of size >= 1 ({op} of nothing is undefined)")
    keep = attrs["keepdims"]
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    return [TensorMeta(shape, dtype)], {"axis": axes, "keepdims": keep}


def _reduced(metas, attrs):
    return max(prod(metas[0].shape[a] for a in attrs["axis"]), 1)


REDUCE_ATTRS = (Attr("axis", None, passthrough), Attr("keepdims", False, to_bool))


def _sum_vjp(F, rec, grads):
    x = rec.inputs[0]
    return [F.broadcast_to(F.reshape(grads[0], reduced_shape(x.shape, rec.attrs["axis"])), x.shape)]


def _mean_vjp(F, rec, grads):
    x = rec.inputs[0]
    g = F.reshape(grads[0], reduced_shape(x.shape, rec.attrs["axis"]))
    return [F.broadcast_to(g * (1.0 / count(x.shape, rec.attrs["axis"])), x.shape)]


def _mean(F, x, *, axis, keepdims):
    return F.sum(x, axis=axis, keepdims=keepdims) * (1.0 / count(x.shape, axis))


SUM = OpSchema(name="sum", family=FAMILY, inputs=(Input("x"),), attrs=REDUCE_ATTRS, infer=infer_reduce,
               reference=reference.reduce.sum, doc="sum over axis (None: every axis)", reduction_length=_reduced,
               vjp=_sum_vjp)
MEAN = OpSchema(name="mean", family=FAMILY, inputs=(Input("x"),), attrs=REDUCE_ATTRS, infer=infer_reduce,
                reference=reference.reduce.mean, doc="mean over axis (None: every axis)", reduction_length=_reduced,
                vjp=_mean_vjp, decomposition=Decomposition(_mean, uses=("sum", "mul")))
MAX = OpSchema(name="max", family=FAMILY, inputs=(Input("x"),), attrs=REDUCE_ATTRS, infer=infer_reduce,
               reference=reference.reduce.max, doc="maximum over axis (None: every axis)",
               vjp=lambda F, rec, g: [F.max_backward(rec.inputs[0], g[0], **rec.attrs)])


def _infer_max_backward(op, metas, attrs):
    x, dy = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy)])
    outs, kattrs = infer_reduce(op, [x], attrs)
    require_dy(op, dy, outs[0].shape, f"max(x of shape {x.shape}, axis={attrs['axis']!r}, "
                                      f"keepdims={attrs['keepdims']})")
    return [TensorMeta(x.shape, dtype)], kattrs


MAX_BACKWARD = OpSchema(
    name="max_backward", family=FAMILY, inputs=(Input("x"), Input("dy")), attrs=REDUCE_ATTRS,
    infer=_infer_max_backward, reference=reference.reduce.max_backward,
    doc="Gradient of max: dy split equally among the tied maxima of each reduced slice.",
    no_vjp="max_backward has no gradient rule yet (second derivatives through max)")
