"""Launch helpers shared by the op modules: typed scalar arguments and 1-D / per-row grids."""

from __future__ import annotations

from typing import Any

import numpy as np

from .runtime import DeviceState, cl_type, dtype_options, round_up


def i32(value: int) -> np.int32:
    """An OpenCL ``int`` argument."""
    return np.int32(value)


def scalar(value: float, dtype: Any) -> Any:
    """An OpenCL ``T`` (or ``V``) argument of the element type ``dtype`` (a bool as one byte, as stored)."""
    dtype = np.dtype(dtype)
    return np.uint8(value) if dtype == np.bool_ else dtype.type(value)


def kernel(dev: DeviceState, family: str, name: str, dtype: Any, extra: str = "") -> Any:
    """Kernel ``name`` of ``family`` compiled for element type ``dtype`` (plus ``extra`` options)."""
    options = dtype_options(dtype) + (" " + extra if extra else "")
    return dev.kernel(family, name, options)


def value_kernel(dev: DeviceState, family: str, name: str, dtype: Any, extra: str = "") -> Any:
    """Kernel ``name`` of ``family`` built for values of ``dtype`` (float, int32, int64 or bool: the
    value type ``V``, with ``VFLOAT`` defined for floats), plus ``extra`` build options; for the ops
    that move or compare values of any dtype (compare, layout, argmax)."""
    t = cl_type(dtype)
    options = f"-D V={t}" + (" -D VFLOAT" if np.dtype(dtype).kind == "f" else "") + \
        (" -D USE_FP64" if t == "double" else "") + (" " + extra if extra else "")
    return dev.kernel(family, name, options)


def run_1d(dev: DeviceState, knl: Any, n: int, *args: Any) -> None:
    """Launch ``knl`` with one work-item per element (``n`` of them, the grid rounded up to the
    work-group size the device allows)."""
    local = dev.local_size(knl)
    dev.launch(knl, (round_up(n, local),), (local,), *args)


def run_rows(dev: DeviceState, knl: Any, rows: int, *args: Any, want: int = 256) -> int:
    """Launch ``knl`` with one work-group per row; a ``__local T*`` scratch of one element per
    work-item is appended to ``args``. Returns the work-group size used."""
    import pyopencl as cl

    local = dev.local_size(knl, want)
    dev.launch(knl, (rows * local,), (local,), *args, cl.LocalMemory(local * 8))  # 8 bytes: room for a double
    return local
