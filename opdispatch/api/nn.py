"""Public functions of the nn family."""

from __future__ import annotations

from typing import Optional

from .. import random
from ..attrs import to_bool
from ..ops import OPS
from ..schema import TensorMeta
from ..tensor import Tensor, run, tensor
from ._types import ArrayLike

__all__ = ["softmax", "log_softmax", "softmax_cross_entropy", "dropout"]

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


def dropout(x: ArrayLike, p: float = 0.5, *, training: bool = True, seed: Optional[int] = None) -> Tensor:
    """In training, each element of x zeroed with probability ``p`` (in [0, 1]) and the others scaled
    by 1 / (1 - p); ``training=False`` or ``p == 0`` returns x unchanged; ``p == 1`` gives x * 0
    (zeros, as PyTorch). The mask is a function of ``seed`` (an int in [0, 2**64)) and the element's
    row-major index, the same bits on every device; ``seed=None`` draws a fresh seed from
    ``od.random`` per call (per run of an ``od.function`` graph, as eager code would)."""
    schema = OPS["dropout"]
    attrs = schema.normalize({"p": p, "seed": 0 if seed is None else seed})
    if not to_bool("dropout", "training", training) or attrs["p"] == 0.0:  # the identity, with the op's checks
        t = x if isinstance(x, Tensor) else tensor(x)
        schema.infer("dropout", [TensorMeta(t.shape, t.dtype)], attrs)
        return t
    return run(schema, (x,), {"p": attrs["p"], "seed": random.next_seed() if seed is None else attrs["seed"]})
