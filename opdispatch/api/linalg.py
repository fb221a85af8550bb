"""Public functions of the linalg family."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike

__all__ = ["matmul"]

_NO_ATTRS: dict = {}


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Matrix product with numpy.matmul semantics (1-D promotion, broadcast batch dimensions)."""
    return run(OPS["matmul"], (a, b), _NO_ATTRS)
