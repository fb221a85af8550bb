"""Fused ops: real ops with schemas, run by a backend's fused kernel when it has one, else as the
composition of the backend's own kernels for the ops they came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import reference
from ..ops import OPS
from ..ops.conv import CONV2D
from ..registry import DeviceRuntime
from ..schema import OpSchema, TensorMeta


def _infer_conv_relu(op: str, metas: Sequence[Optional[TensorMeta]], attrs: dict):
    return CONV2D.infer(op, metas, attrs)


CONV2D_BIAS_RELU = OpSchema(
    name="conv2d_bias_relu",
    inputs=CONV2D.inputs,
    attrs=CONV2D.attrs,
    infer=_infer_conv_relu,
    reference=lambda x, w, bias=None, **attrs: np.maximum(reference.conv2d(x, w, bias, **attrs), 0),
    doc="relu(conv2d(x, w, bias)) in one op (made by graph fusion).",
    reduction_length=CONV2D.reduction_length,
)


@dataclass(frozen=True)
class FusedOp:
    """A fused op's schema, the ops it replaces, and how to compose it from their kernels."""

    schema: OpSchema
    parts: tuple[str, ...]
    compose: Callable[[DeviceRuntime], Callable[..., Any]]


def _compose_conv_relu(rt: DeviceRuntime) -> Callable[..., Any]:
    conv, relu = rt.kernels["conv2d"].fn, rt.kernels["relu"].fn

    def conv2d_bias_relu(x: Any, w: Any, bias: Any = None, **attrs: Any) -> Any:
        return relu(conv(x, w, bias, **attrs))

    return conv2d_bias_relu


FUSED: dict[str, FusedOp] = {
    "conv2d_bias_relu": FusedOp(CONV2D_BIAS_RELU, ("conv2d", "relu"), _compose_conv_relu),
}


def schema_of(op: str) -> OpSchema:
    """The schema of a regular or fused op (KeyError for anything else)."""
    schema = OPS.get(op)
    return schema if schema is not None else FUSED[op].schema


def kernel_for(rt: DeviceRuntime, op: str) -> Optional[Callable[..., Any]]:
    """The function that runs ``op`` on ``rt``: its own kernel, a composition for a fused op, or None."""
    kernel = rt.kernels.get(op)
    if kernel is not None:
        return kernel.fn
    fused = FUSED.get(op)
    if fused is not None and all(p in rt.kernels for p in fused.parts):
        return fused.compose(rt)
    return None


def why_unsupported_op(rt: DeviceRuntime, op: str, metas: Sequence[Optional[TensorMeta]], attrs: dict,
                       dtype: np.dtype) -> Optional[str]:
    """None when ``rt`` can run ``op`` (regular or fused) on these inputs, else the reason."""
    from ..dispatch import why_unsupported

    if op in OPS:
        return why_unsupported(rt, OPS[op], metas, attrs, dtype)
    fused = FUSED[op]
    if op in rt.kernels:
        return why_unsupported(rt, fused.schema, metas, attrs, dtype)
    first, *rest = fused.parts  # a chain: the first part takes the inputs, each later one the previous output
    reason = why_unsupported(rt, OPS[first], metas, attrs, dtype)
    out_meta = fused.schema.infer(op, metas, attrs)[0][0]
    for part in rest:
        reason = reason or why_unsupported(rt, OPS[part], [out_meta], {}, dtype)
    return reason
