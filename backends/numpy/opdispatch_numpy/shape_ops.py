"""Reductions and layout kernels (views where NumPy gives them; tensors are immutable)."""

from __future__ import annotations

import math

import numpy as np


def sum_(x, *, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, *, axis, keepdims):
    return np.mean(x, axis=axis, keepdims=keepdims)


def max_(x, *, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims)


def reshape(x, *, shape):
    return np.reshape(x, shape)


def transpose(x, *, axes):
    return np.transpose(x, axes)


def flatten(x, *, start_axis):
    return np.reshape(x, x.shape[:start_axis] + (math.prod(x.shape[start_axis:]),))


KERNELS = {"sum": sum_, "mean": mean, "max": max_, "reshape": reshape, "transpose": transpose,
           "flatten": flatten}
