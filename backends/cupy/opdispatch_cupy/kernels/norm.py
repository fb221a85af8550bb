"""batch_norm (PyTorch semantics) and its gradient, per channel over every axis but 1; layer_norm and its gradient
per row of x viewed as (rows, M), M the normalised elements."""

from __future__ import annotations

from typing import Callable, Optional, Union

from ..xp import Array, array_module


def _axes(x: Array) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v: Array, x: Array) -> Array:
    """A (C,) vector shaped to broadcast against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_stats(x: Array) -> tuple[Array, Array]:
    """Per-channel batch mean and biased variance (two passes: the centred squares, for accuracy)."""
    xp = array_module(x)
    axes = _axes(x)
    mean = xp.mean(x, axis=axes)
    centred = x - _per_channel(mean, x)
    return mean, xp.mean(centred * centred, axis=axes)


def batch_norm(x: Array, running_mean: Array, running_var: Array, weight: Optional[Array] = None,
               bias: Optional[Array] = None, *, training: bool, momentum: float, eps: float
               ) -> Union[Array, tuple[Array, Array, Array]]:
    """y = (x - mean) / sqrt(var + eps) * weight + bias; training also returns the new running stats."""
    xp = array_module(x)
    if training:
        mean, var = batch_stats(x)
    else:
        mean, var = running_mean, running_var
    scale = 1.0 / xp.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    y = (x - _per_channel(mean, x)) * _per_channel(scale, x)
    if bias is not None:
        y += _per_channel(bias, x)
    if not training:
        return y
    count = x.size // x.shape[1]
    new_mean = (1.0 - momentum) * running_mean + momentum * mean
    new_var = (1.0 - momentum) * running_var + (momentum * count / (count - 1)) * var
    return y, new_mean, new_var


def batch_norm_backward(x: Array, dy: Array, running_mean: Array, running_var: Array,
                        weight: Optional[Array] = None, *, training: bool, eps: float
                        ) -> tuple[Array, Array, Array]:
    """(dx, dweight, dbias); in training dx includes the batch statistics' dependence on x."""
    xp = array_module(x)
    axes = _axes(x)
    mean, var = batch_stats(x) if training else (running_mean, running_var)
    invstd = 1.0 / xp.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
    dbias = xp.sum(dy, axis=axes)
    dweight = xp.sum(dy * xhat, axis=axes)
    gain = invstd if weight is None else invstd * weight
    if not training:
        return dy * _per_channel(gain, x), dweight, dbias
    count = x.size // x.shape[1]
    # dx = gain * (dy - mean(dy) - xhat * mean(dy * xhat)), with mean(dy) = dbias / M etc.
    dx = _per_channel(gain, x) * (dy - _per_channel(dbias / count, x) - xhat * _per_channel(dweight / count, x))
    return dx, dweight, dbias


def _rows(x: Array, normalized_shape: tuple) -> tuple[Array, int]:
    m = 1
    for d in normalized_shape:
        m *= d
    return x.reshape(-1, m), m


def row_stats(x2: Array, eps: float) -> tuple[Array, Array]:
    """x2 (rows, M) minus its row means, and the rows' 1 / sqrt(biased variance + eps) as (rows, 1)."""
    xp = array_module(x2)
    centred = x2 - xp.mean(x2, axis=1, keepdims=True)
    return centred, 1.0 / xp.sqrt(xp.mean(centred * centred, axis=1, keepdims=True) + eps)


def layer_norm(x: Array, weight: Optional[Array] = None, bias: Optional[Array] = None, *,
               normalized_shape: tuple, eps: float) -> Array:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape axes."""
    x2, m = _rows(x, normalized_shape)
    centred, invstd = row_stats(x2, eps)
    y = centred * invstd
    if weight is not None:
        y *= weight.reshape(1, m)
    if bias is not None:
        y += bias.reshape(1, m)
    return y.reshape(x.shape)


def layer_norm_backward(x: Array, dy: Array, weight: Optional[Array] = None, *, normalized_shape: tuple,
                        eps: float) -> tuple[Array, Array, Array]:
    """(dx, dweight, dbias); dweight and dbias sum over the rows."""
    xp = array_module(x)
    x2, m = _rows(x, normalized_shape)
    dy2 = dy.reshape(-1, m)
    centred, invstd = row_stats(x2, eps)
    xhat = centred * invstd
    dbias = xp.sum(dy2, axis=0).reshape(normalized_shape)
    dweight = xp.sum(dy2 * xhat, axis=0).reshape(normalized_shape)
    g = dy2 if weight is None else dy2 * weight.reshape(1, m)
    dx = invstd * (g - xp.mean(g, axis=1, keepdims=True) - xhat * xp.mean(g * xhat, axis=1, keepdims=True))
    return dx.reshape(x.shape), dweight, dbias


KERNELS: dict[str, Callable[..., object]] = {"batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward,
                                             "layer_norm": layer_norm, "layer_norm_backward": layer_norm_backward}
