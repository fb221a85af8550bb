"""Public functions of the norm family."""

from __future__ import annotations

from typing import Any

from ..ops import OPS
from ..tensor import run
from ._types import ArrayLike

__all__ = ["batch_norm"]


def batch_norm(x: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike, weight: ArrayLike = None,
               bias: ArrayLike = None, *, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Any:
    """Batch normalisation over axis 1 (PyTorch semantics).

    Inference returns y. ``training=True`` normalises with the batch statistics (biased variance)
    and returns ``(y, new_running_mean, new_running_var)``, where
    ``new = (1 - momentum) * running + momentum * batch`` and the variance is unbiased; the
    inputs are never mutated.
    """
    return run(OPS["batch_norm"], (x, running_mean, running_var, weight, bias),
               {"training": training, "momentum": momentum, "eps": eps})
