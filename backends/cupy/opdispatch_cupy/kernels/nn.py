"""softmax, log_softmax and the mean softmax cross-entropy with its gradient; dropout."""

from __future__ import annotations

from typing import Callable

from opdispatch.reference.nn import GOLDEN, KEEP_BITS, MIX1, MIX2, dropout_key, dropout_scale, dropout_threshold

from ..xp import Array, array_module


def softmax(x: Array, *, axis: int) -> Array:
    """exp(x - max) normalised along ``axis``."""
    xp = array_module(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, *, axis: int) -> Array:
    """x - max - log(sum(exp(x - max))) along ``axis``."""
    xp = array_module(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _onehot(labels: Array, logits: Array) -> Array:
    xp = array_module(logits)
    return xp.arange(logits.shape[1])[None, :] == labels.reshape(-1, 1)


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean over the batch of -log_softmax(logits)[i, labels[i]] (a 0-d array; NaN for an empty batch)."""
    xp = array_module(logits)
    if logits.shape[0] == 0:  # the mean of no terms
        return xp.full((), xp.nan, dtype=logits.dtype)
    logp = log_softmax(logits, axis=1)
    picked = xp.take_along_axis(logp, labels.reshape(-1, 1).astype(xp.int64), axis=1)
    return -xp.mean(picked)


def softmax_cross_entropy_backward(logits: Array, labels: Array, dloss: Array) -> Array:
    """(softmax(logits) - onehot(labels)) * dloss / N (empty for an empty batch)."""
    xp = array_module(logits)
    p = softmax(logits, axis=1)
    if logits.shape[0] == 0:
        return p
    p = xp.where(_onehot(labels, logits), p - 1, p)
    return p * (dloss / logits.shape[0])


def dropout(x: Array, *, p: float, seed: int) -> Array:
    """x times 1 / (1 - p) where the (seed, row-major index) hash keeps an element, 0 elsewhere: the
    mask of opdispatch.reference.nn.dropout_keep in uint64 arithmetic (wrapping mod 2**64 on the GPU
    as in NumPy), so it is the same bits as on every other device."""
    xp = array_module(x)
    u = xp.uint64
    z = u(dropout_key(seed)) + xp.arange(x.size, dtype=u) * u(GOLDEN)
    z = (z ^ (z >> u(30))) * u(MIX1)
    z = (z ^ (z >> u(27))) * u(MIX2)
    z = z ^ (z >> u(31))
    keep = (z >> u(64 - KEEP_BITS)) >= u(dropout_threshold(p))
    mask = xp.where(keep, x.dtype.type(dropout_scale(p)), x.dtype.type(0))
    return x * mask.reshape(x.shape)


KERNELS: dict[str, Callable[..., Array]] = {
    "softmax": softmax, "log_softmax": log_softmax, "softmax_cross_entropy": softmax_cross_entropy,
    "softmax_cross_entropy_backward": softmax_cross_entropy_backward, "dropout": dropout,
}
