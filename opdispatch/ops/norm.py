"""batch_norm, PyTorch semantics; training returns the updated running statistics too."""

from __future__ import annotations

from .. import reference
from ..attrs import to_bool, to_float
from ..errors import ShapeError
from ..schema import Attr, Input, OpSchema, TensorMeta
from ._checks import float_inputs, prod, require_min_rank, require_positive_dims, require_rank


def check_batch_inputs(op: str, x: TensorMeta, per_channel: list, training: bool) -> None:
    """Validate x (N, C, ...) and its per-channel vectors ``[(name, meta or None)]``; in training,
    require the 2 values per channel the unbiased variance needs."""
    require_min_rank(op, "x", x, 2, "(N, C, ...)")
    require_positive_dims(op, "x", x)
    c = x.shape[1]
    for name, meta in per_channel:
        if meta is not None:
            require_rank(op, name, meta, 1, "(C,)")
            if meta.shape[0] != c:
                raise ShapeError(f"{op}: argument {name!r} got shape {meta.shape}; allowed: ({c},), one per "
                                 f"channel of x {x.shape}")
    count = x.shape[0] * prod(x.shape[2:])
    if training and count < 2:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape}: {count} value per channel; allowed: at least "
                         f"2 values per channel in training (the unbiased variance divides by count - 1)")


def _infer(op, metas, attrs):
    x, rm, rv, weight, bias = metas
    named = [("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)]
    dtype = float_inputs(op, [("x", x)] + named)
    check_batch_inputs(op, x, named, attrs["training"])
    out = TensorMeta(x.shape, dtype)
    if not attrs["training"]:
        return [out], attrs
    stat = TensorMeta((x.shape[1],), dtype)
    return [out, stat, stat], attrs


def _count(metas, attrs):
    x = metas[0]
    return x.shape[0] * prod(x.shape[2:]) if attrs["training"] else 1


BATCH_NORM = OpSchema(
    name="batch_norm",
    inputs=(Input("x"), Input("running_mean"), Input("running_var"), Input("weight", optional=True),
            Input("bias", optional=True)),
    attrs=(Attr("training", False, to_bool),
           Attr("momentum", 0.1, lambda op, arg, v: to_float(op, arg, v, low=0.0, high=1.0)),
           Attr("eps", 1e-5, lambda op, arg, v: to_float(op, arg, v, low=0.0, low_open=True))),
    infer=_infer,
    reference=reference.batch_norm,
    doc="Normalise x per channel (axis 1); training also returns (new_running_mean, new_running_var).",
    reduction_length=_count,
    tolerance_factor=4.0,
)
