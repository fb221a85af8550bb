"""softmax family and the classification loss, numerically stable, in the input dtype."""

from __future__ import annotations

import numpy as np


def softmax(x, *, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def log_softmax(x, *, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def softmax_cross_entropy(logits, labels):
    logp = log_softmax(logits, axis=1)
    picked = logp[np.arange(logits.shape[0]), labels]
    return np.asarray(-np.mean(picked), dtype=logits.dtype)
