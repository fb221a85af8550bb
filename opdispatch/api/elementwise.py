"""Public functions of the elementwise family: each is the op's fast-path function (`opdispatch.tensor.F`)."""

from __future__ import annotations

from typing import Any, Callable

from ..ops import OPS
from ..tensor import F, Tensor, add, div, mul, neg, run, sub

__all__ = ["relu", "leaky_relu", "sigmoid", "silu", "tanh", "exp", "log", "sqrt", "neg", "add", "sub", "mul", "div"]

Unary = Callable[[Any], Tensor]

relu: Unary = F.relu
sigmoid: Unary = F.sigmoid
silu: Unary = F.silu
tanh: Unary = F.tanh
exp: Unary = F.exp
log: Unary = F.log
sqrt: Unary = F.sqrt
_EXPORTED = (add, sub, mul, div, neg)  # defined with the Tensor operators


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope * x`` (PyTorch's leaky_relu)."""
    return run(OPS["leaky_relu"], (x,), {"negative_slope": negative_slope})
