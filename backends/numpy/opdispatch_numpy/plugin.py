"""The plugin module named by this distribution's ``opdispatch.backends`` entry point."""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

from . import __version__, compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES = ("float32", "float64")
FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS`` and, for ops
that compute in other dtypes than `DTYPES` (int, bool), those in a ``DTYPES`` dict by op."""


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="numpy", version=f"{__version__} (numpy {np.__version__})",
                       description="NumPy on the CPU", array_types=(np.ndarray, np.generic), plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="CPU (NumPy)", dtypes=DTYPES)]


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    named = {op: fn for family in FAMILIES for op, fn in family.KERNELS.items()}
    dtypes = {op: d for family in FAMILIES for op, d in getattr(family, "DTYPES", {}).items()}
    return [Kernel(op, fn, dtypes=dtypes.get(op, DTYPES)) for op, fn in sorted(named.items())]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True, order="C")


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
