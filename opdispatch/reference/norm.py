"""Reference norm family: batch normalisation (PyTorch semantics) and its gradient."""

from __future__ import annotations

import numpy as np


def batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    """Normalise over every axis but 1 (channels). Inference uses the running statistics.
    Training uses the batch mean and biased variance, and also returns the updated running
    statistics: ``(1 - momentum) * running + momentum * batch``, the variance unbiased."""
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    bshape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    rm = np.asarray(running_mean, dtype=np.float64)
    rv = np.asarray(running_var, dtype=np.float64)
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        count = x.size // c
    else:
        mean, var = rm, rv
    y = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64).reshape(bshape)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64).reshape(bshape)
    if not training:
        return y
    new_mean = (1 - momentum) * rm + momentum * mean
    new_var = (1 - momentum) * rv + momentum * var * count / (count - 1)
    return y, new_mean, new_var


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def batch_norm_backward(x, dy, running_mean, running_var, weight=None, *, training, eps):
    """(dx, dweight, dbias) of ``y = weight * (x - mean) / sqrt(var + eps) + bias``. In training, mean
    and (biased) var are the batch statistics and dx includes their dependence on x."""
    x, dy = _f64(x), _f64(dy)
    c = x.shape[1]
    bshape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    gamma = np.ones(c) if weight is None else _f64(weight)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = _f64(running_mean), _f64(running_var)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(bshape)) * invstd.reshape(bshape)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    dxhat = dy * gamma.reshape(bshape)
    if training:
        # d xhat_k / d x_j = invstd * (delta_jk - 1/M - xhat_j xhat_k / M)
        dx = invstd.reshape(bshape) * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                                       - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    else:
        dx = dxhat * invstd.reshape(bshape)
    return dx, dweight, dbias
