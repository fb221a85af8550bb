"""The op table: every op's `OpSchema`, by name."""

from __future__ import annotations

from ..errors import InvalidArgumentError
from ..schema import OpSchema
from .conv import CONV2D
from .elementwise import ADD, DIV, EXP, LOG, MUL, NEG, RELU, SIGMOID, SQRT, SUB, TANH
from .fused import FUSED_OPS
from .grad import GRAD_OPS
from .linalg import MATMUL
from .nn import LOG_SOFTMAX, SOFTMAX, SOFTMAX_CROSS_ENTROPY
from .norm import BATCH_NORM
from .pool import AVG_POOL2D, MAX_POOL2D
from .reduce import MAX, MEAN, SUM
from .shape_ops import FLATTEN, RESHAPE, TRANSPOSE

OPS: dict[str, OpSchema] = {s.name: s for s in (
    CONV2D, MAX_POOL2D, AVG_POOL2D, BATCH_NORM, MATMUL,
    RELU, SIGMOID, TANH, EXP, LOG, SQRT, NEG, ADD, SUB, MUL, DIV,
    SUM, MEAN, MAX, RESHAPE, TRANSPOSE, FLATTEN, SOFTMAX, LOG_SOFTMAX, SOFTMAX_CROSS_ENTROPY,
) + GRAD_OPS + FUSED_OPS}


def get_schema(name: str) -> OpSchema:
    """The schema of op ``name``, or `InvalidArgumentError` listing the known ops."""
    try:
        return OPS[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown op {name!r}; allowed: {sorted(OPS)}") from None
