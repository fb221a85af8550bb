"""Dtype names, the float dtypes ops accept, and the checks that enforce them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DTypeError

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")

FLOAT_DTYPES: tuple[np.dtype, ...] = (float16, float32, float64)
"""Every float dtype an op may accept; a backend declares which of them it supports."""

FLOAT_NAMES = ", ".join(d.name for d in FLOAT_DTYPES)

bool_ = np.dtype("bool")
KERNEL_DTYPES: tuple[np.dtype, ...] = FLOAT_DTYPES + (int32, int64, bool_)
"""Every dtype a kernel may declare: the floats, and int32, int64 and bool for the ops that take
integer or bool values (comparisons, where, argmax). Devices declare only their float dtypes: every
device stores integer and bool data."""


def as_dtype(value: Any) -> np.dtype:
    """Return ``value`` as a NumPy dtype (accepts names, types and dtypes)."""
    try:
        return np.dtype(value)
    except TypeError as exc:
        raise DTypeError(f"not a dtype: {value!r}; allowed: a NumPy dtype or its name such as 'float32'") from exc


def is_integer(dtype: np.dtype) -> bool:
    """True for signed and unsigned integer dtypes."""
    return dtype.kind in "iu"


def require_float(op: str, arg: str, dtype: np.dtype) -> None:
    """Raise `DTypeError` unless ``dtype`` is one of `FLOAT_DTYPES`."""
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"{op}: argument {arg!r} got dtype {dtype.name}; allowed: {FLOAT_NAMES}")


def require_same(op: str, named: list[tuple[str, np.dtype]]) -> np.dtype:
    """Raise `DTypeError` unless every (name, dtype) pair has the same dtype; return it."""
    first_name, first = named[0]
    for name, dtype in named[1:]:
        if dtype != first:
            raise DTypeError(
                f"{op}: argument {name!r} got dtype {dtype.name} but {first_name!r} has {first.name}; "
                f"allowed: all float inputs of one dtype (convert one with od.tensor(x, dtype=...))"
            )
    return first
