"""Batch and layer norm: one fused scale-and-shift pass over x (no per-step temporaries of x's size), and their
gradients; local response norm as a running window sum over the channels."""

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


def _rows(x, normalized_shape):
    """x viewed as (rows, M), M = prod(normalized_shape)."""
    m = 1
    for d in normalized_shape:
        m *= d
    return x.reshape(-1, m), m


def row_stats(x2):
    """x2 (rows, M) minus its row means (a fresh array), and the rows' biased variances (rows, 1)."""
    mean = np.mean(x2, axis=1, keepdims=True)
    centered = x2 - mean
    return centered, np.mean(np.square(centered), axis=1, keepdims=True)


def layer_norm(x, weight=None, bias=None, *, normalized_shape, eps):
    x2, m = _rows(x, normalized_shape)
    y, var = row_stats(x2)
    y *= 1 / np.sqrt(var + x.dtype.type(eps))
    if weight is not None:
        y *= weight.reshape(1, m)
    if bias is not None:
        y += bias.reshape(1, m)
    return y.reshape(x.shape)


def layer_norm_backward(x, dy, weight=None, *, normalized_shape, eps):
    x2, m = _rows(x, normalized_shape)
    dy2 = dy.reshape(-1, m)
    xhat, var = row_stats(x2)
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat *= invstd
    dbias = np.sum(dy2, axis=0).reshape(normalized_shape)
    dweight = np.sum(dy2 * xhat, axis=0).reshape(normalized_shape)
    g = dy2 if weight is None else dy2 * weight.reshape(1, m)
    # dx = invstd * (g - mean(g) - xhat * mean(g * xhat)) per row
    proj = np.mean(g * xhat, axis=1, keepdims=True)
    dx = xhat
    dx *= -proj
    dx += g
    dx -= np.mean(g, axis=1, keepdims=True)
    dx *= invstd
    return dx.reshape(x.shape), dweight, dbias


KERNELS: dict[str, Callable] = {"batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward,
                                "layer_norm": layer_norm, "layer_norm_backward": layer_norm_backward}
