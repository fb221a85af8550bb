"""Reference norm family: batch and layer normalisation (PyTorch semantics) and their gradients, local
response normalisation across channels."""

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


def _trailing_axes(x, normalized_shape) -> tuple:
    return tuple(range(x.ndim - len(normalized_shape), x.ndim))


def layer_norm(x, weight=None, bias=None, *, normalized_shape, eps):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with the mean and the biased variance taken
    over the trailing ``len(normalized_shape)`` axes; weight and bias have shape normalized_shape."""
    x = _f64(x)
    axes = _trailing_axes(x, normalized_shape)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * _f64(weight)
    if bias is not None:
        y = y + _f64(bias)
    return y


def layer_norm_backward(x, dy, weight=None, *, normalized_shape, eps):
    """(dx, dweight, dbias) of layer_norm's ``y`` for the output gradient ``dy``; dweight and dbias sum
    over the leading (not normalised) axes."""
    x, dy = _f64(x), _f64(dy)
    axes = _trailing_axes(x, normalized_shape)
    lead = tuple(range(x.ndim - len(normalized_shape)))
    m = float(np.prod(normalized_shape))
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    xhat = (x - mean) * invstd
    dbias = dy.sum(axis=lead)
    dweight = (dy * xhat).sum(axis=lead)
    dxhat = dy if weight is None else dy * _f64(weight)
    # y = xhat(x): the Jacobian of xhat is invstd * (I - 1/M - xhat xhat^T / M) per normalised row
    dx = invstd * (dxhat - dxhat.sum(axis=axes, keepdims=True) / m
                   - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True) / m)
    return dx, dweight, dbias


def local_response_norm(x, *, size, alpha, beta, k):
    """``x / (k + alpha / size * s) ** beta`` where ``s`` at channel c sums x^2 over channels
    ``c - size // 2`` to ``c + (size - 1) // 2`` that exist (PyTorch's window: zero padding)."""
    x = _f64(x)
    c = x.shape[1]
    sq = x * x
    s = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c - 1, ch + (size - 1) // 2)
        s[:, ch] = sq[:, lo:hi + 1].sum(axis=1)
    return x / (k + alpha / size * s) ** beta
