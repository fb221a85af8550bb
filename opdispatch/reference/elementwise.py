"""Reference element-wise ops, computed in float64."""

from __future__ import annotations

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def relu(x):
    """max(x, 0)."""
    return np.maximum(_f64(x), 0.0)


def sigmoid(x):
    """1 / (1 + exp(-x)), evaluated without overflow for large |x|."""
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def leaky_relu(x, *, negative_slope):
    """x where x > 0, else negative_slope * x (NaN stays NaN)."""
    x = _f64(x)
    return np.where(x > 0, x, x * negative_slope)


def silu(x):
    """x * sigmoid(x)."""
    return _f64(x) * sigmoid(x)


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(_f64(x))


def exp(x):
    """e ** x."""
    with np.errstate(over="ignore"):
        return np.exp(_f64(x))


def log(x):
    """Natural logarithm (nan below 0, -inf at 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_f64(x))


def sqrt(x):
    """Square root (nan below 0)."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(_f64(x))


def neg(x):
    """-x."""
    return -_f64(x)


def add(a, b):
    """a + b, broadcasting."""
    return _f64(a) + _f64(b)


def sub(a, b):
    """a - b, broadcasting."""
    return _f64(a) - _f64(b)


def mul(a, b):
    """a * b, broadcasting."""
    return _f64(a) * _f64(b)


def div(a, b):
    """a / b, broadcasting (inf or nan on division by zero, as IEEE says)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f64(a) / _f64(b)


def relu_backward(dy, x):
    """dy where x > 0, else 0."""
    return np.where(_f64(x) > 0, _f64(dy), 0.0)
