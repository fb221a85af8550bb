"""Public functions of the elementwise family: each is the op's fast-path function (`opdispatch.tensor.F`)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..ops import OPS
from ..tensor import F, Tensor, add, div, mul, neg, run, sub

__all__ = ["relu", "leaky_relu", "sigmoid", "silu", "tanh", "exp", "log", "sqrt", "neg", "add", "sub", "mul", "div",
           "clip", "hardsigmoid", "hardswish", "erf", "gelu", "abs", "pow", "maximum", "minimum", "cast"]

Unary = Callable[[Any], Tensor]

relu: Unary = F.relu
sigmoid: Unary = F.sigmoid
silu: Unary = F.silu
tanh: Unary = F.tanh
exp: Unary = F.exp
log: Unary = F.log
sqrt: Unary = F.sqrt
hardsigmoid: Unary = F.hardsigmoid
hardswish: Unary = F.hardswish
erf: Unary = F.erf
abs: Unary = F.abs  # noqa: A001 - od.abs, as np.abs
Binary = Callable[[Any, Any], Tensor]
pow: Binary = F.pow  # noqa: A001 - od.pow(x, y), as np.power
maximum: Binary = F.maximum
minimum: Binary = F.minimum
_EXPORTED = (add, sub, mul, div, neg)  # defined with the Tensor operators


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope * x`` (PyTorch's leaky_relu)."""
    return run(OPS["leaky_relu"], (x,), {"negative_slope": negative_slope})


def clip(x: Any, min: Optional[float] = None, max: Optional[float] = None) -> Tensor:  # noqa: A002 - API.md's names
    """x limited to ``[min, max]`` (scalars; None: unbounded on that side), as np.clip: NaN stays NaN,
    and min > max gives max everywhere. The gradient passes where ``min <= x <= max``, the boundaries
    included (PyTorch's clamp), and is 0 everywhere when min > max."""
    return run(OPS["clip"], (x,), {"min": min, "max": max})


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``, Phi the standard normal CDF: ``approximate="none"`` computes it with erf,
    ``"tanh"`` with PyTorch's approximation ``(1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2``."""
    return run(OPS["gelu"], (x,), {"approximate": approximate})


def cast(x: Any, dtype: Any) -> Tensor:
    """``x`` converted to ``dtype`` (float16/32/64, int32, int64, bool), as ``x.astype(dtype)``: floats to
    ints truncate toward zero; differentiable from float to float."""
    return run(OPS["cast"], (x,), {"dtype": dtype})
