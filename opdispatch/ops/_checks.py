"""Small validation helpers shared by the op definitions."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..dtypes import require_float, require_same
from ..errors import ShapeError
from ..schema import TensorMeta


def require_rank(op: str, arg: str, meta: TensorMeta, ranks: "int | tuple[int, ...]", layout: str = "") -> None:
    """Raise `ShapeError` unless ``meta`` has one of ``ranks``."""
    allowed = (ranks,) if isinstance(ranks, int) else ranks
    if len(meta.shape) not in allowed:
        what = " or ".join(str(r) for r in allowed)
        raise ShapeError(f"{op}: argument {arg!r} got shape {meta.shape} (rank {len(meta.shape)}); "
                         f"allowed: rank {what}{' ' + layout if layout else ''}")


def require_min_rank(op: str, arg: str, meta: TensorMeta, rank: int, layout: str = "") -> None:
    """Raise `ShapeError` unless ``meta`` has at least ``rank`` dimensions."""
    if len(meta.shape) < rank:
        raise ShapeError(f"{op}: argument {arg!r} got shape {meta.shape} (rank {len(meta.shape)}); "
                         f"allowed: rank >= {rank}{' ' + layout if layout else ''}")


def require_positive_dims(op: str, arg: str, meta: TensorMeta) -> None:
    """Raise `ShapeError` when any dimension is zero."""
    if 0 in meta.shape:
        raise ShapeError(f"{op}: argument {arg!r} got shape {meta.shape}; allowed: every dimension >= 1")


def float_inputs(op: str, named: Sequence[tuple[str, Optional[TensorMeta]]]) -> np.dtype:
    """Check that every present input is float and that they share one dtype; return it."""
    present = [(n, m.dtype) for n, m in named if m is not None]
    for name, dtype in present:
        require_float(op, name, dtype)
    return require_same(op, present)


def prod(dims: Sequence[int]) -> int:
    """Product of a sequence of ints (1 for an empty one)."""
    out = 1
    for d in dims:
        out *= d
    return out
