"""Element-wise kernels: NumPy ufuncs in the input dtype."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def relu(x):
    return np.maximum(x, 0, dtype=x.dtype)


def sigmoid(x):
    # exp of -|x| never overflows; pick the stable form per sign
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def exp(x):
    with np.errstate(over="ignore"):
        return np.exp(x)


def log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


def sqrt(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


def div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def select(mask, values):
    """``values`` where ``mask``, else 0: as one multiply by the mask (np.where is several times
    slower here), falling back to np.where when a non-finite value makes ``0 * value`` differ from 0."""
    with np.errstate(invalid="ignore"):  # inf * 0: replaced below
        out = np.multiply(values, mask, dtype=values.dtype)
    if not np.isfinite(out).all():
        out = np.where(mask, values, values.dtype.type(0))
    return out


def relu_backward(dy, x):
    return select(x > 0, dy)


def leaky_relu(x, *, negative_slope):
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def clip(x, *, min, max):  # noqa: A002 - the op's attribute names
    """np.clip's rule (NaN stays NaN, min > max gives max), None meaning unbounded."""
    if min is None and max is None:
        return x.copy()
    # one pass (np.clip's ufunc), where maximum-then-minimum took two and an intermediate array
    return np.clip(x, None if min is None else x.dtype.type(min), None if max is None else x.dtype.type(max))


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)
ERF_SPLIT = 2.0  # below: the series; from here to ERF_ONE: the continued fraction of erfc
ERF_ONE = 6.0  # erfc(6) ~ 2e-17: erf rounds to 1 in float64 from here on
ERF_SERIES_TERMS = 40  # the series' terms fall by 2 a^2 / (2n + 3) < 8 / (2n + 3): 40 reach 1e-17 at a = 2
ERF_FRACTION_TERMS = 50  # the continued fraction, evaluated from its 50th level: converged to 1e-17 for a >= 2


def erf64(a):
    """erf of float64 ``a`` to about 1e-15 relative error (10 ulps at worst, near 1.7; measured against
    math.erf on 3e5 points in [-7, 7] and down to 1e-300).

    |x| < 2: erf(a) = 2/sqrt(pi) exp(-a^2) sum_n (2 a^2)^n a / (1 * 3 * ... * (2n + 1)), whose terms
    are all positive (no cancellation, unlike the alternating Taylor series); 2 <= |x| < 6:
    erf = 1 - erfc, erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / (a + ...))));
    |x| >= 6: 1. Odd, so -0.0 stays -0.0; NaN stays NaN, erf(+-inf) = +-1."""
    a = np.asarray(a, dtype=np.float64)
    mag = np.abs(a)
    out = np.ones_like(mag)
    low = mag < ERF_SPLIT
    s = mag[low]
    z = 2.0 * s * s
    term, total = s.copy(), s.copy()
    for n in range(1, ERF_SERIES_TERMS):
        term *= z / (2 * n + 1)
        total += term
    out[low] = _TWO_OVER_SQRT_PI * np.exp(-s * s) * total
    mid = (mag >= ERF_SPLIT) & (mag < ERF_ONE)
    b = mag[mid]
    f = b.copy()
    for k in range(ERF_FRACTION_TERMS, 0, -1):
        f = b + (0.5 * k) / f
    out[mid] = 1.0 - np.exp(-b * b) / (_SQRT_PI * f)
    out[np.isnan(mag)] = np.nan
    return np.copysign(out, a)


def erf(x):
    """float64 as `erf64`; float32 and float16 through float64, rounded once (within 0.5 ulp and a hair)."""
    return erf64(x).astype(x.dtype, copy=False)


def hardsigmoid(x):
    """PyTorch's form: 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between (NaN stays NaN)."""
    t = x.dtype.type
    return np.where(x <= -3, t(0), np.where(x >= 3, t(1), x / t(6) + t(0.5)))


def hardswish(x):
    """PyTorch's form: 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between (NaN stays NaN)."""
    t = x.dtype.type
    return np.where(x <= -3, t(0), np.where(x >= 3, x, x * (x + t(3)) / t(6)))


_GELU_BETA = math.sqrt(2.0 / math.pi)


def gelu(x, *, approximate):
    """x * Phi(x) with erf ('none') or PyTorch's tanh approximation ('tanh'); 0 at -inf."""
    t = x.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        if approximate == "tanh":
            phi = t(0.5) + t(0.5) * np.tanh(t(_GELU_BETA) * (x + t(0.044715) * (x * x * x)))
        else:
            phi = t(0.5) + t(0.5) * erf(x * t(math.sqrt(0.5)))
        return np.where(x == -np.inf, t(0), x * phi)


def pow_(x, y):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.power(x, y)


def cast(x, *, dtype):
    """x's values in ``dtype`` (NumPy's astype; out-of-range floats to ints are NumPy's business)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)


KERNELS: dict[str, Callable] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": np.tanh, "exp": exp, "log": log, "sqrt": sqrt,
    "neg": np.negative, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": div,
    "relu_backward": relu_backward, "leaky_relu": leaky_relu,
    "clip": clip, "erf": erf, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "gelu": gelu, "abs": np.abs,
    "pow": pow_, "maximum": np.maximum, "minimum": np.minimum,
}
KERNELS["cast"] = cast

DTYPES: dict[str, tuple[str, ...]] = {"cast": ("float16", "float32", "float64", "int32", "int64", "bool")}
"""cast converts from every dtype (the float ones the device supports)."""
