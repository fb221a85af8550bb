"""The array-module compatibility layer: the kernels are written once against ``xp``.

``xp`` is CuPy for CuPy arrays and NumPy for anything else, so the same kernel code runs on the
GPU and, for testing without one, on the CPU (CuPy mirrors the NumPy API). Every kernel goes
through `kernel`, which picks the module, runs the kernel on the device that holds its inputs,
computes float16 in float32, and returns arrays (never NumPy scalars).
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import Any, Callable, ContextManager, Optional, Sequence

import numpy as np

Array = Any
"""A ``numpy.ndarray`` or a ``cupy.ndarray``."""


def _cupy() -> Optional[ModuleType]:
    """CuPy when it is already imported (no CuPy array can exist otherwise), else None."""
    return sys.modules.get("cupy")


def is_cupy(array: Any) -> bool:
    """True when ``array`` is a ``cupy.ndarray``."""
    cp = _cupy()
    return cp is not None and isinstance(array, cp.ndarray)


def array_module(*arrays: Any) -> ModuleType:
    """``cupy`` when any of ``arrays`` is a CuPy array, else ``numpy`` (like ``cupy.get_array_module``)."""
    for a in arrays:
        if is_cupy(a):
            return _cupy()  # type: ignore[return-value]
    return np


def first_array(args: Sequence[Any]) -> Any:
    """The first argument that is an array (kernels have at least one), or None."""
    for a in args:
        if a is not None and hasattr(a, "shape"):
            return a
    return None


def device_scope(array: Any) -> ContextManager[Any]:
    """Run on the device that holds ``array``: ``with array.device`` for CuPy, nothing for NumPy;
    NumPy's floating-point warnings are silenced (IEEE results such as inf are the contract)."""
    if is_cupy(array):
        return array.device
    return np.errstate(all="ignore")


def _upcast(value: Any) -> Any:
    return value.astype("float32") if getattr(value, "dtype", None) == np.float16 else value


def _as_array(value: Any, xp: ModuleType, half: bool) -> Array:
    out = xp.asarray(value)
    return out.astype("float16") if half and out.dtype.kind == "f" else out


def kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a kernel written against ``xp``: device selection, float16 computed in float32,
    array results. The wrapper keeps ``fn``'s signature (``functools.wraps``). A kernel marked
    ``fn.native_half = True`` (cast: its result dtype is its attribute) gets float16 inputs as they are."""
    native_half = getattr(fn, "native_half", False)

    @functools.wraps(fn)
    def run(*args: Any, **attrs: Any) -> Any:
        x = first_array(args)
        half = getattr(x, "dtype", None) == np.float16 and not native_half
        with device_scope(x):
            out = fn(*(_upcast(a) for a in args), **attrs) if half else fn(*args, **attrs)
            xp = array_module(x)
            if isinstance(out, tuple):
                return tuple(_as_array(o, xp, half) for o in out)
            return _as_array(out, xp, half)

    return run


def host_to(xp: ModuleType, values: np.ndarray, like: Array) -> Array:
    """A small host-computed NumPy array moved to ``xp`` (current device) in ``like``'s dtype."""
    return xp.asarray(values.astype(like.dtype, copy=False))

