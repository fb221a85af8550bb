"""Reference nn family: softmax, log_softmax, the classification loss and its gradient."""

from __future__ import annotations

import numpy as np


def softmax(x, *, axis):
    """exp(x - max) normalised along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, *, axis):
    """x - logsumexp(x) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean over the batch of ``-log_softmax(logits)[i, labels[i]]``; NaN for an empty batch (the mean of
    no terms, as PyTorch's reduction='mean')."""
    logp = log_softmax(logits, axis=1)
    labels = np.asarray(labels)
    if logp.shape[0] == 0:
        return np.asarray(np.nan)
    return np.asarray(-np.mean(logp[np.arange(logp.shape[0]), labels]))


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def softmax_cross_entropy_backward(logits, labels, dloss):
    """(softmax(logits) - onehot(labels)) * dloss / N; an empty (0, C) array for an empty batch."""
    p = softmax(logits, axis=1)
    n = p.shape[0]
    if n == 0:
        return p
    p[np.arange(n), np.asarray(labels)] -= 1.0
    return p * (float(_f64(dloss)) / n)
