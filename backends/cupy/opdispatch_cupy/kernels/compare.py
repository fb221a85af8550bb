"""Comparisons (bool results) and where, with NumPy broadcasting (written against ``xp``)."""

from __future__ import annotations

from typing import Callable

from ..xp import Array, array_module


def _compare(name: str) -> Callable[[Array, Array], Array]:
    def fn(a: Array, b: Array) -> Array:
        return getattr(array_module(a, b), name)(a, b)

    fn.__name__ = name
    fn.__doc__ = f"Element-wise {name} (bool), NumPy broadcasting; NaN compares unequal."
    return fn


def where(cond: Array, a: Array, b: Array) -> Array:
    """a where cond, else b, all three broadcast."""
    return array_module(cond, a, b).where(cond, a, b)


KERNELS: dict[str, Callable[..., Array]] = {name: _compare(name) for name in
                                            ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")}
KERNELS["where"] = where

_VALUES = ("float16", "float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel (the operands'; where's a and b take no bool)."""
DTYPES["where"] = _VALUES
