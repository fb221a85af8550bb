"""Reference element-wise ops, computed in float64."""

from __future__ import annotations

import math

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


def clip(x, *, min, max):  # noqa: A002 - the op's attribute names
    """x limited to [min, max], None meaning unbounded; NaN stays NaN; min > max gives max (np.clip)."""
    x = _f64(x)
    if min is not None:
        x = np.maximum(x, min)
    if max is not None:
        x = np.minimum(x, max)
    return np.array(x, dtype=np.float64)


def hardsigmoid(x):
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, x / 6 + 1/2 between."""
    return np.minimum(np.maximum(_f64(x) + 3.0, 0.0), 6.0) / 6.0


def hardswish(x):
    """x * hardsigmoid(x): 0 for x <= -3 (-inf included), x for x >= 3, x (x + 3) / 6 between."""
    x = _f64(x)
    with np.errstate(invalid="ignore"):
        return np.where(x <= -3.0, 0.0, np.where(x >= 3.0, x, x * (x + 3.0) / 6.0))


_math_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """The error function, element by element with Python's math.erf (independent of the backends'
    vectorised approximations)."""
    return np.asarray(_math_erf(_f64(x)), dtype=np.float64)


def gelu(x, *, approximate):
    """x * Phi(x): Phi(x) = (1 + erf(x / sqrt 2)) / 2 ('none'), or PyTorch's tanh approximation
    (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2 ('tanh'); 0 at -inf (the limit)."""
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        if approximate == "tanh":
            phi = 0.5 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
        else:
            phi = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return np.where(x == -np.inf, 0.0, x * phi)


def abs(x):  # noqa: A001 - the op's name
    """|x|."""
    return np.abs(_f64(x))


def pow(x, y):  # noqa: A001 - the op's name
    """x ** y, broadcasting, as C's pow (NaN for x < 0 with a non-integer y, inf for 0 ** negative y,
    x ** 0 == 1 and 1 ** y == 1 even for NaN)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.power(_f64(x), _f64(y))


def maximum(a, b):
    """The larger of a and b, broadcasting; NaN where either is NaN."""
    return np.maximum(_f64(a), _f64(b))


def minimum(a, b):
    """The smaller of a and b, broadcasting; NaN where either is NaN."""
    return np.minimum(_f64(a), _f64(b))


def cast(x, *, dtype):
    """x's values in ``dtype``, as NumPy's astype (floats to ints truncate toward 0; nonzero is True)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(x).astype(dtype)
