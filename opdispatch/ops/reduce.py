"""Reductions over axes: sum, mean, max."""

from __future__ import annotations

from .. import reference
from ..attrs import to_axes, to_bool
from ..errors import ShapeError
from ..schema import Attr, Input, OpSchema, TensorMeta, passthrough
from ._checks import float_inputs, prod


def _infer(op, metas, attrs):
    (x,) = metas
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


def _reduction(name: str, doc: str, exact: bool = False) -> OpSchema:
    return OpSchema(name=name, inputs=(Input("x"),),
                    attrs=(Attr("axis", None, passthrough), Attr("keepdims", False, to_bool)),
                    infer=_infer, reference=getattr(reference, name), doc=doc,
                    reduction_length=(lambda metas, attrs: 1) if exact else _reduced)


SUM = _reduction("sum", "sum over axis (None: every axis)")
MEAN = _reduction("mean", "mean over axis (None: every axis)")
MAX = _reduction("max", "maximum over axis (None: every axis)", exact=True)
