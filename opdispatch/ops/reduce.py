"""The reduce family: sum, mean, max and min over axes with the gradients of max and min, and
argmax / argmin (int64 indices). max and min take int32, int64 and bool tensors too (NumPy's
values, in the input's dtype); sum and mean are float ops (``od.sum`` / ``t.sum()`` of int or bool
tensors count through a float cast, see `opdispatch.tensor.reduce_values`)."""

from __future__ import annotations

import numpy as np

from .. import reference
from ..attrs import AXES, OPTIONAL_AXIS, _is_int, to_axes, to_axis, to_bool
from ..dtypes import KERNEL_DTYPES
from ..errors import ShapeError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta, passthrough
from ._checks import float_inputs, prod, require_dy, value_inputs
from ._rules import count, reduced_shape

FAMILY = "reduce"


EXTREMUM_DTYPES = KERNEL_DTYPES
"""The dtypes max and min take: the floats, int32, int64 and bool (as NumPy, the result keeps the dtype)."""


def infer_reduce(op, metas, attrs):
    """Validate a reduction of x (``metas[0]``); return its output meta and kernel attributes."""
    (x,) = metas[:1]
    dtype = value_inputs(op, [("x", x)], EXTREMUM_DTYPES) if op in ("max", "min") else float_inputs(op, [("x", x)])
    axes = to_axes(op, "axis", attrs["axis"], len(x.shape))
    if op != "sum" and any(x.shape[a] == 0 for a in axes):
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape} with an empty reduced axis; allowed: "
                         f"reduced axes of size >= 1 ({op} of nothing is undefined)")
    keep = attrs["keepdims"]
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    return [TensorMeta(shape, dtype)], {"axis": axes, "keepdims": keep}


def _reduced(metas, attrs):
    return max(prod(metas[0].shape[a] for a in attrs["axis"]), 1)


REDUCE_ATTRS = (Attr("axis", None, passthrough, AXES), Attr("keepdims", False, to_bool))


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
MAX = OpSchema(name="max", family=FAMILY, inputs=(Input("x", kind="value"),), attrs=REDUCE_ATTRS, infer=infer_reduce,
               reference=reference.reduce.max, doc="maximum over axis (None: every axis); float, int or bool x",
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

MIN = OpSchema(name="min", family=FAMILY, inputs=(Input("x", kind="value"),), attrs=REDUCE_ATTRS, infer=infer_reduce,
               reference=reference.reduce.min, doc="minimum over axis (None: every axis); float, int or bool x",
               vjp=lambda F, rec, g: [F.min_backward(rec.inputs[0], g[0], **rec.attrs)],
               # -max(-x): exact (negation is), NaN propagates as in max; float x only (neg is a
               # float op, and -INT_MIN overflows), so int and bool min need a kernel
               decomposition=Decomposition(lambda F, x, **a: F.neg(F.max(F.neg(x), **a)), uses=("neg", "max")))
MIN_BACKWARD = OpSchema(
    name="min_backward", family=FAMILY, inputs=(Input("x"), Input("dy")), attrs=REDUCE_ATTRS,
    infer=_infer_max_backward, reference=reference.reduce.min_backward,
    doc="Gradient of min: dy split equally among the tied minima of each reduced slice.",
    no_vjp="min_backward has no gradient rule yet (second derivatives through min)",
    # the minima of x are the maxima of -x, ties alike
    decomposition=Decomposition(lambda F, x, dy, **a: F.max_backward(F.neg(x), dy, **a), uses=("neg", "max_backward")))

ARG_DTYPES = tuple(d for d in KERNEL_DTYPES if d.kind != "b")
"""The dtypes argmax / argmin take: float and int (bool has no order to speak of here)."""


def _infer_arg(op, metas, attrs):
    """argmax / argmin of x: axis None (the flattened tensor, NumPy's rule) or one axis; int64 indices."""
    (x,) = metas
    value_inputs(op, [("x", x)], ARG_DTYPES)
    keep = attrs["keepdims"]
    if attrs["axis"] is None:
        if prod(x.shape) == 0:
            raise ShapeError(f"{op}: argument 'x' got shape {x.shape} with no elements; allowed: a non-empty "
                             f"tensor ({op} of nothing is undefined)")
        return [TensorMeta((1,) * len(x.shape) if keep else (), INT64)], {"axis": None, "keepdims": keep}
    axis = to_axis(op, "axis", attrs["axis"], len(x.shape))
    if x.shape[axis] == 0:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape} with an empty axis {axis}; allowed: an axis "
                         f"of size >= 1 ({op} of nothing is undefined)")
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape) if keep or i != axis)
    return [TensorMeta(shape, INT64)], {"axis": axis, "keepdims": keep}


def _arg_axis(op: str, arg: str, value):
    """None or one int (the range is checked with x's rank by shape inference)."""
    if value is None or _is_int(value):
        return None if value is None else int(value)
    raise arg_error(op, arg, value, "None (the flattened tensor) or one int axis")


INT64 = np.dtype("int64")
ARG_ATTRS = (Attr("axis", None, _arg_axis, OPTIONAL_AXIS), Attr("keepdims", False, to_bool))
ARGMAX = OpSchema(name="argmax", family=FAMILY, inputs=(Input("x", kind="value"),), attrs=ARG_ATTRS,
                  infer=_infer_arg, reference=reference.reduce.argmax,
                  doc="index of the maximum along axis (None: of the flattened tensor); the first on ties and the "
                      "first NaN where there is one",
                  no_vjp="argmax returns int64 indices: piecewise constant, no gradient flows")
ARGMIN = OpSchema(name="argmin", family=FAMILY, inputs=(Input("x", kind="value"),), attrs=ARG_ATTRS,
                  infer=_infer_arg, reference=reference.reduce.argmin,
                  doc="index of the minimum along axis (None: of the flattened tensor); the first on ties and the "
                      "first NaN where there is one",
                  no_vjp="argmin returns int64 indices: piecewise constant, no gradient flows")
