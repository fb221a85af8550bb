"""Launch helpers shared by the op modules: typed scalar arguments and 1-D / per-row grids."""

from __future__ import annotations

from typing import Any

import numpy as np

from .runtime import DeviceState, dtype_options, round_up


def i32(value: int) -> np.int32:
    """An OpenCL ``int`` argument."""
    return np.int32(value)


def scalar(value: float, dtype: Any) -> Any:
    """An OpenCL ``T`` argument of the element type ``dtype``."""
    return np.dtype(dtype).type(value)


def kernel(dev: DeviceState, family: str, name: str, dtype: Any, extra: str = "") -> Any:
    """Kernel ``name`` of ``family`` compiled for element type ``dtype`` (plus ``extra`` options)."""
    options = dtype_options(dtype) + (" " + extra if extra else "")
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
