"""The linalg family: matmul with numpy.matmul semantics."""

from __future__ import annotations

from .. import reference
from ..errors import ShapeError
from ..schema import Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import float_inputs, require_min_rank
from ._rules import unbroadcast

FAMILY = "linalg"


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


def _swap_last(F, t):
    n = len(t.shape)
    return F.transpose(t, tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_vjp(F, rec, grads):
    a, b = rec.inputs
    (dy,) = grads
    a2 = F.reshape(a, (1,) + a.shape) if len(a.shape) == 1 else a
    b2 = F.reshape(b, b.shape + (1,)) if len(b.shape) == 1 else b
    batch = dy.shape[:len(dy.shape) - (len(a.shape) > 1) - (len(b.shape) > 1)]
    dy2 = F.reshape(dy, batch + (a2.shape[-2], b2.shape[-1]))
    da = F.reshape(unbroadcast(F, F.matmul(dy2, _swap_last(F, b2)), a2.shape), a.shape) if rec.wants(0) else None
    db = F.reshape(unbroadcast(F, F.matmul(_swap_last(F, a2), dy2), b2.shape), b.shape) if rec.wants(1) else None
    return [da, db]


def _inner(metas, attrs):
    return metas[0].shape[-1]


MATMUL = OpSchema(
    name="matmul", family=FAMILY,
    inputs=(Input("a"), Input("b")),
    attrs=(),
    infer=_infer,
    reference=reference.linalg.matmul,
    doc="Matrix product following numpy.matmul (1-D promotion, broadcast batch dimensions).",
    reduction_length=_inner,
    vjp=_matmul_vjp,
)
