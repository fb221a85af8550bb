"""Batch norm: one fused scale-and-shift pass over x (no per-step temporaries of x's size), and its gradient."""

from __future__ import annotations

from typing import Callable

import numpy as np


def layout(x):
    """The broadcast shape (1, C, 1, ...) of per-channel values and the axes reduced per channel."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2), (0,) + tuple(range(2, x.ndim))


def batch_stats(x, bshape, axes):
    """Per-channel batch mean, x minus it (a fresh array), and the biased variance."""
    mean = np.mean(x, axis=axes)
    centered = x - mean.reshape(bshape)
    return mean, centered, np.mean(np.square(centered), axis=axes)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    c = x.shape[1]
    bshape, axes = layout(x)
    if training:
        mean, centered, var = batch_stats(x, bshape, axes)
    else:
        mean, var = running_mean, running_var
    scale = 1 / np.sqrt(var + x.dtype.type(eps))
    if weight is not None:
        scale = scale * weight
    if training:
        y = centered
        y *= scale.reshape(bshape)
    else:
        y = x * scale.reshape(bshape)
        y -= (mean * scale).reshape(bshape)
    if bias is not None:
        y += bias.reshape(bshape)
    if not training:
        return y
    count = x.size // c
    m = x.dtype.type(momentum)
    new_mean = (1 - m) * running_mean + m * mean
    new_var = (1 - m) * running_var + m * var * x.dtype.type(count / (count - 1))
    return y, new_mean.astype(x.dtype, copy=False), new_var.astype(x.dtype, copy=False)


def batch_norm_backward(x, dy, running_mean, running_var, weight=None, *, training, eps):
    c = x.shape[1]
    bshape, axes = layout(x)
    if training:
        _, xhat, var = batch_stats(x, bshape, axes)
    else:
        xhat = x - running_mean.reshape(bshape)
        var = running_var
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat *= invstd.reshape(bshape)
    dbias = np.sum(dy, axis=axes)
    dweight = np.sum(dy * xhat, axis=axes)
    scale = invstd if weight is None else invstd * weight
    if training:
        count = x.dtype.type(x.size // c)
        dx = xhat
        dx *= -(dweight / count).reshape(bshape)
        dx += dy
        dx -= (dbias / count).reshape(bshape)
        dx *= scale.reshape(bshape)
    else:
        dx = dy * scale.reshape(bshape)
    return dx, dweight, dbias


KERNELS: dict[str, Callable] = {"batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward}
