"""Public functions of the norm family."""

from __future__ import annotations

from typing import Any, Sequence, Union

from ..ops import OPS
from ..tensor import run
from ._types import ArrayLike

__all__ = ["batch_norm", "layer_norm", "local_response_norm"]

REORDERED = ("layer_norm",)
"""layer_norm takes normalized_shape (an attribute) before weight and bias (inputs), as PyTorch's does:
`opdispatch.op_function` gives the generic ``layer_norm(x, weight, bias, normalized_shape=...)`` instead."""


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


def layer_norm(x: ArrayLike, normalized_shape: Union[int, Sequence[int]], weight: ArrayLike = None,
               bias: ArrayLike = None, *, eps: float = 1e-5) -> Any:
    """Layer normalisation over the trailing ``len(normalized_shape)`` axes (PyTorch semantics).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, the mean and the biased variance taken over
    those axes; ``x.shape`` must end with ``normalized_shape`` (an int is one axis), and weight and bias,
    when given, have shape ``normalized_shape``. ``eps`` must be > 0.
    """
    return run(OPS["layer_norm"], (x, weight, bias), {"normalized_shape": normalized_shape, "eps": eps})


def local_response_norm(x: ArrayLike, size: int, *, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Any:
    """Local response normalisation across the channels (axis 1) of x (N, C, ...), PyTorch's formula.

    ``y = x / (k + alpha / size * sum(x[:, c'] ** 2)) ** beta``, the sum over the ``size`` channels
    ``c - size // 2 <= c' <= c + (size - 1) // 2`` (zeros past the edges). For odd ``size`` this is
    ONNX LRN's window too; for even ``size`` ONNX's window is this one mirrored (``(size - 1) // 2``
    channels before c, ``size // 2`` after).
    """
    return run(OPS["local_response_norm"], (x,), {"size": size, "alpha": alpha, "beta": beta, "k": k})
