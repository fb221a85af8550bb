"""The plugin module named by this distribution's ``opdispatch.backends`` entry point.

Importing it never imports CuPy: the device probe does, and reports a missing CuPy, driver or
GPU as `opdispatch.backend.BackendUnavailable`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

from . import __version__
from .kernels.table import kernels as kernel_table
from .runtime import cupy_version, load_cupy, probe_devices


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="cupy", version=f"{__version__} ({cupy_version() or 'CuPy not installed'})",
                       description="CuPy on NVIDIA GPUs (cuBLAS matmul, im2col + GEMM convolution)",
                       plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return probe_devices()


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    return kernel_table()


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> Any:
    cupy = load_cupy()
    with cupy.cuda.Device(device.index):
        return cupy.array(array, copy=True, order="C")


@hookimpl
def opdispatch_to_numpy(data: Any, device: Any) -> np.ndarray:
    cupy = load_cupy()
    if isinstance(data, cupy.ndarray):
        # get(out=...) always copies and synchronises (plain asnumpy may return a view of unified memory)
        return data.get(out=np.empty(data.shape, dtype=data.dtype))
    return np.array(data, copy=True)
