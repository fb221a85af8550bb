"""Layout ops: reshape, transpose, flatten."""

from __future__ import annotations

from .. import reference
from ..attrs import to_axis, to_shape
from ..errors import arg_error, ShapeError
from ..schema import Attr, Input, OpSchema, TensorMeta, passthrough
from ._checks import float_inputs, prod


def _infer_reshape(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    shape = attrs["shape"]
    if prod(d for d in shape if d > 0) > 2**63 - 1:
        raise arg_error(op, "shape", shape, "dimensions whose product fits in int64", ShapeError)
    size = prod(x.shape)
    known = prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise arg_error(op, "shape", shape, f"a shape whose -1 can be resolved for {size} elements "
                            f"(input shape {x.shape})", ShapeError)
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise arg_error(op, "shape", shape, f"a shape with {size} elements (input shape {x.shape})", ShapeError)
    return [TensorMeta(shape, dtype)], {"shape": shape}


def _infer_transpose(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    ndim = len(x.shape)
    axes = attrs["axes"]
    if axes is None:
        axes = tuple(reversed(range(ndim)))
    elif isinstance(axes, (tuple, list)) and len(axes) == ndim:
        axes = tuple(to_axis(op, "axes", a, ndim) for a in axes)
        if sorted(axes) != list(range(ndim)):
            raise arg_error(op, "axes", attrs["axes"], f"a permutation of range({ndim})")
    else:
        raise arg_error(op, "axes", axes, f"None or a permutation of range({ndim}) for input shape {x.shape}")
    return [TensorMeta(tuple(x.shape[a] for a in axes), dtype)], {"axes": axes}


def _infer_flatten(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    start = to_axis(op, "start_axis", attrs["start_axis"], len(x.shape))
    return [TensorMeta(x.shape[:start] + (prod(x.shape[start:]),), dtype)], {"start_axis": start}


RESHAPE = OpSchema(name="reshape", inputs=(Input("x"),), attrs=(Attr("shape", None, to_shape),),
                   infer=_infer_reshape, reference=reference.reshape,
                   doc="the same elements, row-major, under a new shape (one -1 is inferred)")
TRANSPOSE = OpSchema(name="transpose", inputs=(Input("x"),), attrs=(Attr("axes", None, passthrough),),
                     infer=_infer_transpose, reference=reference.transpose,
                     doc="permute axes (None reverses them)")
FLATTEN = OpSchema(name="flatten", inputs=(Input("x"),), attrs=(Attr("start_axis", 1, passthrough),),
                   infer=_infer_flatten, reference=reference.flatten,
                   doc="merge every axis from start_axis on into one")
