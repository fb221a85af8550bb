"""Public functions of the nn family."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike

__all__ = ["softmax", "log_softmax", "softmax_cross_entropy"]

_NO_ATTRS: dict = {}


def softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """exp(x) normalised along ``axis``."""
    return run(OPS["softmax"], (x,), {"axis": axis})


def log_softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return run(OPS["log_softmax"], (x,), {"axis": axis})


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Tensor:
    """Mean over the batch of -log_softmax(logits)[i, labels[i]]: logits (N, C), int labels (N,)."""
    return run(OPS["softmax_cross_entropy"], (logits, labels), _NO_ATTRS)
