"""softmax, log_softmax, softmax_cross_entropy and its gradient as row kernels; labels stay in their own
integer dtype on the device. dropout: one work-item per element, its keep-mask hashed in ulong arithmetic."""

from __future__ import annotations

import numpy as np

from opdispatch.reference.nn import dropout_key, dropout_scale, dropout_threshold

from .arrays import CLArray, empty, from_numpy
from .launch import i32, kernel, run_1d, run_rows, scalar
from .layout import permute
from .reduce import inverse, row_local, to_rows
from .runtime import cl_type

FAMILY = "nn"


def _softmax(x: CLArray, axis: int, log_mode: bool) -> CLArray:
    dev = x.dev
    rows2d, perm, _ = to_rows(x, (axis,))
    m, k = rows2d.shape
    out = empty(dev, rows2d.shape, x.dtype)
    knl = kernel(dev, "reduce", "softmax_rows", x.dtype)  # a row kernel of the reduce program (cl/reduce.cl)
    run_rows(dev, knl, m, rows2d.buf, out.buf, i32(k), i32(int(log_mode)), want=row_local(k))
    return permute(out.view(tuple(x.shape[a] for a in perm)), inverse(perm))


def softmax(x: CLArray, *, axis: int) -> CLArray:
    """exp(x) normalised along ``axis``."""
    return _softmax(x, axis, False)


def log_softmax(x: CLArray, *, axis: int) -> CLArray:
    """x - logsumexp(x) along ``axis``."""
    return _softmax(x, axis, True)


def _kernel(logits: CLArray, labels: CLArray, name: str):
    return kernel(logits.dev, FAMILY, name, logits.dtype, f"-D LABEL_T={cl_type(labels.dtype)}")


def softmax_cross_entropy(logits: CLArray, labels: CLArray) -> CLArray:
    """Mean over rows of logsumexp(row) - row[label] (a 0-d array; NaN for no rows, the mean of no terms)."""
    dev = logits.dev
    n, c = logits.shape
    if n == 0:
        return from_numpy(np.full((), np.nan, dtype=logits.dtype), dev.index)
    losses = empty(dev, (n,), logits.dtype)
    run_rows(dev, _kernel(logits, labels, "xent_rows"), n, logits.buf, labels.buf, losses.buf, i32(c),
             want=row_local(c))
    out = empty(dev, (), logits.dtype)
    knl = kernel(dev, "reduce", "sum_rows", logits.dtype)
    run_rows(dev, knl, 1, losses.buf, out.buf, i32(n), scalar(n, logits.dtype), want=row_local(n))
    return out


def softmax_cross_entropy_backward(logits: CLArray, labels: CLArray, dloss: CLArray) -> CLArray:
    """(softmax(logits) - onehot(labels)) * dloss / N."""
    dev = logits.dev
    n, c = logits.shape
    out = empty(dev, logits.shape, logits.dtype)
    run_rows(dev, _kernel(logits, labels, "xent_backward_rows"), n, logits.buf, labels.buf, dloss.buf,
             out.buf, i32(c), i32(n), want=row_local(c))
    return out


def dropout(x: CLArray, *, p: float, seed: int) -> CLArray:
    """x times 1 / (1 - p) where the (seed, index) hash keeps an element, 0 elsewhere (cl/nn.cl,
    the definition of opdispatch.reference.nn; key and threshold computed here)."""
    out = empty(x.dev, x.shape, x.dtype)
    if x.size:
        run_1d(x.dev, kernel(x.dev, FAMILY, "dropout_k", x.dtype), x.size, x.buf, out.buf, i32(x.size),
               np.uint64(dropout_key(seed)), np.uint32(dropout_threshold(p)), scalar(dropout_scale(p), x.dtype))
    return out


KERNELS = {"softmax": softmax, "log_softmax": log_softmax, "softmax_cross_entropy": softmax_cross_entropy,
           "softmax_cross_entropy_backward": softmax_cross_entropy_backward, "dropout": dropout}
