"""Fused ops: one op for a chain the graph frontend fuses, so a backend can ship one kernel for it.

A backend without the fused kernel still runs graphs: the graph frontend then composes the
fused op from the backend's kernels for the ops it came from (``FUSED_PARTS``).
"""

from __future__ import annotations

from .. import reference
from ..schema import OpSchema
from .conv import CONV2D

CONV2D_BIAS_RELU = OpSchema(
    name="conv2d_bias_relu", inputs=CONV2D.inputs, attrs=CONV2D.attrs, infer=CONV2D.infer,
    reference=reference.conv2d_bias_relu, doc="relu(conv2d(x, w, bias)) in one op (made by graph fusion)",
    reduction_length=CONV2D.reduction_length)

FUSED_OPS = (CONV2D_BIAS_RELU,)
# fused op -> the chain of ops it replaces (the first takes the inputs, each later one the previous output)
FUSED_PARTS: dict[str, tuple[str, ...]] = {"conv2d_bias_relu": ("conv2d", "relu")}
