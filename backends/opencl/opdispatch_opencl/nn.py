"""softmax_cross_entropy and its gradient; labels stay in their own integer dtype on the device."""

from __future__ import annotations

from .arrays import CLArray, empty
from .launch import i32, kernel, run_rows, scalar
from .reduce import row_local
from .runtime import cl_type

FAMILY = "nn"


def _kernel(logits: CLArray, labels: CLArray, name: str):
    return kernel(logits.dev, FAMILY, name, logits.dtype, f"-D LABEL_T={cl_type(labels.dtype)}")


def softmax_cross_entropy(logits: CLArray, labels: CLArray) -> CLArray:
    """Mean over rows of logsumexp(row) - row[label] (a 0-d array)."""
    dev = logits.dev
    n, c = logits.shape
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


KERNELS = {"softmax_cross_entropy": softmax_cross_entropy,
           "softmax_cross_entropy_backward": softmax_cross_entropy_backward}
