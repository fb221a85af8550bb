"""softmax family and the classification loss (and its gradient), numerically stable, in the input dtype;
dropout with the device-independent keep-mask."""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.reference.nn import GOLDEN, KEEP_BITS, MIX1, MIX2, dropout_key, dropout_scale, dropout_threshold


def softmax(x, *, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def log_softmax(x, *, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def softmax_cross_entropy(logits, labels):
    if logits.shape[0] == 0:  # the mean of no terms
        return np.full((), np.nan, dtype=logits.dtype)
    logp = log_softmax(logits, axis=1)
    picked = logp[np.arange(logits.shape[0]), labels]
    return np.asarray(-np.mean(picked), dtype=logits.dtype)


def softmax_cross_entropy_backward(logits, labels, dloss):
    p = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    p /= np.sum(p, axis=1, keepdims=True)
    n = logits.shape[0]
    if n == 0:  # an empty batch: an empty gradient
        return p
    p[np.arange(n), labels] -= 1
    p *= dloss / logits.dtype.type(n)
    return p


def dropout(x, *, p, seed):
    """x times 1 / (1 - p) where the (seed, index) hash keeps an element, times 0 elsewhere (uint64
    arithmetic, wrapping as the definition in opdispatch.reference.nn)."""
    u = np.uint64
    z = u(dropout_key(seed)) + np.arange(x.size, dtype=u) * u(GOLDEN)
    z ^= z >> u(30)
    z *= u(MIX1)
    z ^= z >> u(27)
    z *= u(MIX2)
    z ^= z >> u(31)
    keep = (z >> u(64 - KEEP_BITS)) >= u(dropout_threshold(p))
    scale = x.dtype.type(dropout_scale(p))
    return x * np.where(keep, scale, x.dtype.type(0)).reshape(x.shape)


KERNELS: dict[str, Callable] = {
    "softmax": softmax, "log_softmax": log_softmax, "softmax_cross_entropy": softmax_cross_entropy,
    "softmax_cross_entropy_backward": softmax_cross_entropy_backward, "dropout": dropout,
}
