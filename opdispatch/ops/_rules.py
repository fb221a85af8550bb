"""Helpers shared by gradient rules and decompositions (written with ``F``, see `opdispatch.schema`)."""

from __future__ import annotations

from typing import Any, Optional


def unbroadcast(F: Any, g: Any, shape: tuple) -> Any:
    """Sum ``g`` over the axes NumPy broadcasting added or stretched to reach ``g.shape`` from ``shape``."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    return F.reshape(F.sum(g, axis=axes), shape) if axes else F.reshape(g, shape)


def add_grads(a: Optional[Any], b: Optional[Any]) -> Optional[Any]:
    """``a + b`` where either may be None (no gradient)."""
    return b if a is None else a if b is None else a + b


def without(attrs: dict, *names: str) -> dict:
    """``attrs`` without the keys ``names``."""
    return {k: v for k, v in attrs.items() if k not in names}


def reduced_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with each axis of ``axes`` kept as 1 (keepdims)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def count(shape: tuple, axes: tuple) -> int:
    """The number of elements ``axes`` of ``shape`` span."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n
