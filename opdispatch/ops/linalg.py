"""matmul with numpy.matmul semantics."""

from __future__ import annotations

from .. import reference
from ..errors import ShapeError
from ..schema import Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import float_inputs, require_min_rank


def _infer(op, metas, attrs):
    a, b = metas
    dtype = float_inputs(op, [("a", a), ("b", b)])
    require_min_rank(op, "a", a, 1)
    require_min_rank(op, "b", b, 1)
    sa = a.shape if len(a.shape) > 1 else (1,) + a.shape
    sb = b.shape if len(b.shape) > 1 else b.shape + (1,)
    if sa[-1] != sb[-2]:
        raise ShapeError(f"{op}: arguments 'a' {a.shape} and 'b' {b.shape} have inner dimensions {sa[-1]} and "
                         f"{sb[-2]}; allowed: equal inner dimensions (numpy.matmul rules)")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    if batch is None:
        raise ShapeError(f"{op}: arguments 'a' {a.shape} and 'b' {b.shape} have batch dimensions {sa[:-2]} and "
                         f"{sb[:-2]} that do not broadcast; allowed: NumPy-broadcastable batch dimensions")
    out = batch + (sa[-2],) * (len(a.shape) > 1) + (sb[-1],) * (len(b.shape) > 1)
    return [TensorMeta(out, dtype)], attrs


def _inner(metas, attrs):
    return metas[0].shape[-1]


MATMUL = OpSchema(
    name="matmul",
    inputs=(Input("a"), Input("b")),
    attrs=(),
    infer=_infer,
    reference=reference.matmul,
    doc="Matrix product following numpy.matmul (1-D promotion, broadcast batch dimensions).",
    reduction_length=_inner,
)
