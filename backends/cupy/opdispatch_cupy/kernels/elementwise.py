"""Element-wise ops, broadcasting binary ops and relu_backward."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

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


def clip(x: Array, *, min: Optional[float], max: Optional[float]) -> Array:  # noqa: A002 - attribute names
    """np.clip's rule (NaN stays NaN, min > max gives max), None meaning unbounded."""
    xp = array_module(x)
    out = x
    if min is not None:
        out = xp.maximum(out, x.dtype.type(min))
    if max is not None:
        out = xp.minimum(out, x.dtype.type(max))
    return out.copy() if out is x else out


def hardsigmoid(x: Array) -> Array:
    """PyTorch's form: 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between (NaN stays NaN)."""
    xp, t = array_module(x), x.dtype.type
    return xp.where(x <= -3, t(0), xp.where(x >= 3, t(1), x / t(6) + t(0.5)))


def hardswish(x: Array) -> Array:
    """PyTorch's form: 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between (NaN stays NaN)."""
    xp, t = array_module(x), x.dtype.type
    return xp.where(x <= -3, t(0), xp.where(x >= 3, x, x * (x + t(3)) / t(6)))


_ERF_SPLIT, _ERF_ONE, _ERF_SERIES_TERMS, _ERF_FRACTION_TERMS = 2.0, 6.0, 40, 50


def _erf64(xp: Any, a: Array) -> Array:
    """erf in float64 without SciPy (the CPU simulation): for |x| < 2 the positive series
    2/sqrt(pi) exp(-a^2) sum (2a^2)^n a / (1*3*...*(2n+1)), for 2 <= |x| < 6 one minus erfc's continued
    fraction exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / ...))), 1 beyond; ~1e-15 relative."""
    a = a.astype("float64")
    mag = xp.abs(a)
    s = xp.minimum(mag, _ERF_SPLIT)
    z = 2.0 * s * s
    term, total = s, s
    for n in range(1, _ERF_SERIES_TERMS):
        term = term * z / (2 * n + 1)
        total = total + term
    small = (2.0 / math.sqrt(math.pi)) * xp.exp(-s * s) * total
    b = xp.clip(mag, _ERF_SPLIT, _ERF_ONE)
    f = b
    for k in range(_ERF_FRACTION_TERMS, 0, -1):
        f = b + (0.5 * k) / f
    large = xp.where(mag >= _ERF_ONE, 1.0, 1.0 - xp.exp(-b * b) / (math.sqrt(math.pi) * f))
    out = xp.where(mag < _ERF_SPLIT, small, large)
    return xp.copysign(xp.where(xp.isnan(mag), mag, out), a)


def erf(x: Array) -> Array:
    """The error function: cupyx.scipy.special.erf on the GPU; `_erf64` elsewhere (rounded once to x's dtype)."""
    xp = array_module(x)
    if xp is not np:
        from cupyx.scipy.special import erf as cupy_erf  # CuPy's own CUDA erf

        return cupy_erf(x)
    return _erf64(xp, x).astype(x.dtype)


_GELU_BETA = math.sqrt(2.0 / math.pi)


def gelu(x: Array, *, approximate: str) -> Array:
    """x * Phi(x) with erf ('none') or PyTorch's tanh approximation ('tanh'); 0 at -inf."""
    xp, t = array_module(x), x.dtype.type
    if approximate == "tanh":
        phi = t(0.5) + t(0.5) * xp.tanh(t(_GELU_BETA) * (x + t(0.044715) * (x * x * x)))
    else:
        phi = t(0.5) + t(0.5) * erf(x * t(math.sqrt(0.5)))
    return xp.where(x == -xp.inf, t(0), x * phi)


def abs_(x: Array) -> Array:
    """|x|."""
    return array_module(x).abs(x)


def pow_(x: Array, y: Array) -> Array:
    """x ** y, broadcasting, C's pow rules (NaN for a negative x with a non-integer y)."""
    return array_module(x, y).power(x, y)


def maximum(a: Array, b: Array) -> Array:
    """The larger of a and b, broadcasting; NaN propagates."""
    return array_module(a, b).maximum(a, b)


def minimum(a: Array, b: Array) -> Array:
    """The smaller of a and b, broadcasting; NaN propagates."""
    return array_module(a, b).minimum(a, b)


def cast(x: Array, *, dtype: str) -> Array:
    """x's values in ``dtype`` (as NumPy's astype: floats to ints truncate toward 0, nonzero is True)."""
    return x.astype(dtype)


KERNELS: dict[str, Callable[..., Array]] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "exp": exp, "log": log, "sqrt": sqrt, "neg": neg,
    "add": add, "sub": sub, "mul": mul, "div": div, "relu_backward": relu_backward, "leaky_relu": leaky_relu,
    "clip": clip, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "erf": erf, "gelu": gelu, "abs": abs_,
    "pow": pow_, "maximum": maximum, "minimum": minimum,
}
KERNELS["cast"] = cast

cast.native_half = True  # type: ignore[attr-defined]  # CuPy converts float16 itself; no float32 detour

DTYPES: dict[str, tuple[str, ...]] = {"cast": ("float16", "float32", "float64", "int32", "int64", "bool")}
"""cast converts from every dtype (float16 natively, see `opdispatch_cupy.xp.kernel`)."""
