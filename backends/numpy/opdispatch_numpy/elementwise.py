"""Element-wise kernels: NumPy ufuncs in the input dtype."""

from __future__ import annotations

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


KERNELS: dict[str, Callable] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": np.tanh, "exp": exp, "log": log, "sqrt": sqrt,
    "neg": np.negative, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": div,
    "relu_backward": relu_backward, "leaky_relu": leaky_relu,
}
