"""The plugin module named by this distribution's ``opdispatch.backends`` entry point.

numpy:0 computes in float32 and float64, and stores float16: each op's float16 kernel is its float32
kernel behind `opdispatch.backend.float16_kernels` (inputs widened, float results rounded once to float16), declared
as a kernel of its own so that the float32 and float64 calls run the unwrapped kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel, float16_kernels

from . import __version__, compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES = ("float32", "float64")
"""What the kernels compute in; float16 is computed in float32 (`float16_kernels`)."""
DEVICE_DTYPES = ("float16", *DTYPES)
FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS`` and, for ops
that compute in other dtypes than `DTYPES` (int, bool), those in a ``DTYPES`` dict by op."""


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="numpy", version=f"{__version__} (numpy {np.__version__})",
                       description="NumPy on the CPU", array_types=(np.ndarray, np.generic), plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="CPU (NumPy; float16 computed in float32)", dtypes=DEVICE_DTYPES)]


_ARRAYS = (np.ndarray, np.generic)


def _widen(value: Any) -> Any:
    return value.astype(np.float32) if isinstance(value, _ARRAYS) and value.dtype == np.float16 else value


def _narrow(value: Any) -> Any:
    return value.astype(np.float16) if isinstance(value, _ARRAYS) and value.dtype == np.float32 else value


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    named = {op: fn for family in FAMILIES for op, fn in family.KERNELS.items()}
    dtypes = {op: d for family in FAMILIES for op, d in getattr(family, "DTYPES", {}).items()}
    kernels = [Kernel(op, fn, dtypes=dtypes.get(op, DTYPES)) for op, fn in sorted(named.items())]
    return kernels + float16_kernels(kernels, _widen, _narrow)


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True, order="C")


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
