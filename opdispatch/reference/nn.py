"""Reference nn family: softmax, log_softmax, the classification loss and its gradient, and dropout
with the definition of its keep-mask (the same bits on every device)."""

from __future__ import annotations

import math

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


# -- dropout: the keep-mask, a counter-based hash every device computes bit for bit ---------------
#
# Element i (its row-major index in x) of a dropout with seed s and probability p is kept when
#     (mix64(key + i * GOLDEN mod 2**64) >> 40) >= threshold,
#     key = mix64(s + GOLDEN mod 2**64),  threshold = ceil(p * 2**24),
# where mix64 is the splitmix64 finaliser (xor-shifts and two multiplications mod 2**64). Only
# unsigned 64-bit integer arithmetic is involved, so NumPy, OpenCL C (ulong) and CuPy (uint64) give
# the same mask; the comparison of a 24-bit integer with an integer threshold is exact. A kept element
# is multiplied by 1 / (1 - p), a dropped one by 0 (so NaN and inf stay NaN, as in PyTorch and ONNX);
# p = 1 multiplies everything by 0. Kernels compute key and threshold on the host with these helpers.

GOLDEN = 0x9E3779B97F4A7C15
"""The increment of the splitmix64 sequence (2**64 / the golden ratio)."""
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1
KEEP_BITS = 24  # the top 24 bits of each hash are compared with the threshold


def mix64(z: int) -> int:
    """The splitmix64 finaliser of a Python int in [0, 2**64)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def dropout_key(seed: int) -> int:
    """The per-seed key of the mask hash: mix64(seed + GOLDEN)."""
    return mix64((int(seed) + GOLDEN) & MASK64)


def dropout_threshold(p: float) -> int:
    """Elements whose 24-bit hash is below this are dropped: ceil(p * 2**24), in [0, 2**24]."""
    return math.ceil(float(p) * (1 << KEEP_BITS))


def dropout_scale(p: float) -> float:
    """The factor of kept elements, 1 / (1 - p); 0 for p = 1 (nothing is kept)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - float(p))


def hash_array(seed: int, n: int) -> np.ndarray:
    """``mix64(key + i * GOLDEN)`` for i in [0, n), key = `dropout_key`(seed): the counter-based hash of
    the definition above, as uint64 (NumPy's uint64 arithmetic wraps mod 2**64, as the definition)."""
    z = np.uint64(dropout_key(seed)) + np.arange(n, dtype=np.uint64) * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def dropout_keep(seed: int, p: float, shape: tuple) -> np.ndarray:
    """The boolean keep-mask of a dropout of an array of ``shape``."""
    z = hash_array(seed, math.prod(shape))
    return ((z >> np.uint64(64 - KEEP_BITS)) >= np.uint64(dropout_threshold(p))).reshape(shape)


def dropout(x, *, p, seed):
    """x times the mask: 1 / (1 - p) where `dropout_keep` keeps an element, 0 where it drops it."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.where(dropout_keep(seed, p, x.shape), dropout_scale(p), 0.0)
