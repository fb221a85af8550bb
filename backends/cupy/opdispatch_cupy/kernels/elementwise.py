"""Element-wise ops, broadcasting binary ops and relu_backward."""

from __future__ import annotations

from typing import Callable

from ..xp import Array, array_module


def relu(x: Array) -> Array:
    """max(x, 0); NaN stays NaN."""
    return array_module(x).maximum(x, 0)


def leaky_relu(x: Array, *, negative_slope: float) -> Array:
    """x where x > 0, else negative_slope * x."""
    return array_module(x).where(x > 0, x, x * x.dtype.type(negative_slope))


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), from exp(-|x|) so that no exponent overflows."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x: Array) -> Array:
    """Hyperbolic tangent."""
    return array_module(x).tanh(x)


def exp(x: Array) -> Array:
    """e ** x."""
    return array_module(x).exp(x)


def log(x: Array) -> Array:
    """Natural logarithm."""
    return array_module(x).log(x)


def sqrt(x: Array) -> Array:
    """Square root."""
    return array_module(x).sqrt(x)


def neg(x: Array) -> Array:
    """-x."""
    return array_module(x).negative(x)


def add(a: Array, b: Array) -> Array:
    """a + b, broadcasting."""
    return array_module(a, b).add(a, b)


def sub(a: Array, b: Array) -> Array:
    """a - b, broadcasting."""
    return array_module(a, b).subtract(a, b)


def mul(a: Array, b: Array) -> Array:
    """a * b, broadcasting."""
    return array_module(a, b).multiply(a, b)


def div(a: Array, b: Array) -> Array:
    """a / b, broadcasting (IEEE inf/NaN on division by zero)."""
    return array_module(a, b).true_divide(a, b)


def relu_backward(dy: Array, x: Array) -> Array:
    """dy where x > 0, else 0 (also where dy is inf or NaN)."""
    xp = array_module(dy, x)
    return xp.where(x > 0, dy, xp.zeros((), dtype=dy.dtype))


KERNELS: dict[str, Callable[..., Array]] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "exp": exp, "log": log, "sqrt": sqrt, "neg": neg,
    "add": add, "sub": sub, "mul": mul, "div": div, "relu_backward": relu_backward, "leaky_relu": leaky_relu,
}
