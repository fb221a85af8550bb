"""Comparisons (bool results, stored as one byte each like NumPy's bool) and where, under NumPy
broadcasting; also the value-type launch helper `value_kernel` that the argmax / argmin of the
reduce family use. The kernels (``cl/compare.cl``) are built per value type, so integer and bool
operands run here as float ones do."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .arrays import CLArray, broadcast_strides, collapse, empty, int8
from .elementwise import broadcast_shape
from . import launch
from .launch import i32, run_1d
from .runtime import DeviceState

FAMILY = "compare"
BOOL = np.dtype("bool")


def value_kernel(dev: DeviceState, name: str, dtype: Any) -> Any:
    """Kernel ``name`` of ``cl/compare.cl`` for values of ``dtype`` (`launch.value_kernel`)."""
    return launch.value_kernel(dev, FAMILY, name, dtype)


def _compare(name: str) -> Callable[[CLArray, CLArray], CLArray]:
    def fn(a: CLArray, b: CLArray) -> CLArray:
        dev = a.dev
        shape = broadcast_shape(a.shape, b.shape)
        out = empty(dev, shape, BOOL)
        n = out.size
        if n == 0:
            return out
        if a.shape == b.shape:
            run_1d(dev, value_kernel(dev, name + "_same", a.dtype), n, a.buf, b.buf, out.buf, i32(n))
            return out
        dims, (sa, sb) = collapse(shape, broadcast_strides(a.shape, shape), broadcast_strides(b.shape, shape))
        run_1d(dev, value_kernel(dev, name + "_bcast", a.dtype), n, a.buf, b.buf, out.buf, i32(n),
               int8(dims), int8(sa), int8(sb))
        return out

    fn.__name__ = name.removesuffix("_k")
    fn.__doc__ = f"Element-wise {fn.__name__} (bool) with NumPy broadcasting, on the device."
    return fn


def where(cond: CLArray, a: CLArray, b: CLArray) -> CLArray:
    """a where cond, else b, all three broadcast."""
    dev = a.dev
    shape = broadcast_shape(broadcast_shape(cond.shape, a.shape), b.shape)
    out = empty(dev, shape, a.dtype)
    n = out.size
    if n == 0:
        return out
    if cond.shape == a.shape == b.shape:
        run_1d(dev, value_kernel(dev, "where_same", a.dtype), n, cond.buf, a.buf, b.buf, out.buf, i32(n))
        return out
    dims, (sc, sa, sb) = collapse(shape, broadcast_strides(cond.shape, shape), broadcast_strides(a.shape, shape),
                                  broadcast_strides(b.shape, shape))
    run_1d(dev, value_kernel(dev, "where_bcast", a.dtype), n, cond.buf, a.buf, b.buf, out.buf, i32(n),
           int8(dims), int8(sc), int8(sa), int8(sb))
    return out


KERNELS = {name.removesuffix("_k"): _compare(name) for name in
           ("equal_k", "not_equal_k", "less_k", "less_equal_k", "greater_k", "greater_equal_k")}
KERNELS["where"] = where

_VALUES = ("float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel (the operands'; where's a and b take no bool)."""
DTYPES["where"] = _VALUES
