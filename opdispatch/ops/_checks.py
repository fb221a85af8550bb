"""Small validation helpers shared by the op definitions."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..attrs import INT_MAX, KernelForm, _is_int, is_ints
from ..dtypes import KERNEL_DTYPES, require_float, require_same
from ..errors import DTypeError, ShapeError, arg_error
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


def require_positive_dims_but_batch(op: str, arg: str, meta: TensorMeta) -> None:
    """Raise `ShapeError` when a dimension other than the batch (axis 0) is zero: an empty batch
    is a valid call (its result is empty too), an empty channel, row or column is not."""
    if 0 in meta.shape[1:]:
        raise ShapeError(f"{op}: argument {arg!r} got shape {meta.shape}; allowed: every dimension >= 1 but the "
                         f"batch (axis 0), which may be 0")


def float_inputs(op: str, named: Sequence[tuple[str, Optional[TensorMeta]]]) -> np.dtype:
    """Check that every present input is float and that they share one dtype; return it."""
    present = [(n, m.dtype) for n, m in named if m is not None]
    for name, dtype in present:
        require_float(op, name, dtype)
    return require_same(op, present)


def prod(dims: Iterable[int]) -> int:
    """Product of ints (1 for an empty one)."""
    out = 1
    for d in dims:
        out *= d
    return out


MAX_ELEMENTS = 2**60
"""Bound on the element count of a shape attribute: a float64 array of it fits an int64 byte count."""


SHAPE4 = KernelForm("a tuple of four ints >= 0", lambda v, m: is_ints(v, 4, 0))
"""The form of `shape4`'s attributes at the kernel."""


def shape4(what: str, empty_batch: bool = False):
    """Normaliser of a 4-d shape attribute such as ``input_shape`` (N, C, H, W); with ``empty_batch``
    the first dimension (the batch) may be 0."""
    low = 0 if empty_batch else 1

    def normalize(op: str, arg: str, value: Any) -> tuple[int, int, int, int]:
        if isinstance(value, (tuple, list)) and len(value) == 4 and all(_is_int(v) and 1 <= v <= INT_MAX
                                                                        for v in value[1:]) \
                and _is_int(value[0]) and low <= value[0] <= INT_MAX and prod(value) < MAX_ELEMENTS:
            return tuple(int(v) for v in value)  # type: ignore[return-value]
        first = f"the first in [0, {INT_MAX}] (an empty batch), the others in [1, {INT_MAX}]" if empty_batch \
            else f"in [1, {INT_MAX}]"
        raise arg_error(op, arg, value, f"a sequence of 4 ints {first} {what}, at most {MAX_ELEMENTS - 1} "
                        f"elements in all (8-byte elements addressable in int64)")

    return normalize


def require_dy(op: str, dy: TensorMeta, expected: tuple, forward: str) -> None:
    """Raise `ShapeError` unless the upstream gradient ``dy`` has the forward output's shape."""
    if tuple(dy.shape) != tuple(expected):
        raise ShapeError(f"{op}: argument 'dy' got shape {dy.shape}; allowed: {expected}, the output shape of "
                         f"{forward}")


def value_inputs(op: str, named: Sequence[tuple[str, Any]], allowed: tuple[np.dtype, ...] = KERNEL_DTYPES) -> np.dtype:
    """Check that every (name, meta) of an op taking values (float, int or bool: comparisons, where,
    the layout ops, argmax) has one dtype among ``allowed``; return it."""
    first_name, first = named[0]
    for name, meta in named:
        if meta.dtype not in allowed:
            raise DTypeError(f"{op}: argument {name!r} got dtype {meta.dtype.name}; allowed: "
                             f"{', '.join(d.name for d in allowed)}")
    for name, meta in named[1:]:
        if meta.dtype != first.dtype:
            raise DTypeError(f"{op}: argument {name!r} got dtype {meta.dtype.name} but {first_name!r} has "
                             f"{first.dtype.name}; allowed: inputs of one dtype (convert one with x.astype(...); "
                             f"a Python number takes the tensor's dtype)")
    return first.dtype
