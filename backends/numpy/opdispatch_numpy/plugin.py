"""The plugin module named by this distribution's ``opdispatch.backends`` entry point."""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

from . import __version__
from .conv import conv2d, conv2d_bias_relu
from .elementwise import KERNELS as ELEMENTWISE
from .grad import KERNELS as GRAD
from .nn import log_softmax, softmax, softmax_cross_entropy
from .norm import batch_norm
from .pool import avg_pool2d, max_pool2d
from .shape_ops import KERNELS as SHAPE_OPS

DTYPES = ("float32", "float64")


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="numpy", version=f"{__version__} (numpy {np.__version__})",
                       description="NumPy on the CPU")


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="CPU (NumPy)", dtypes=DTYPES)]


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    named = {"conv2d": conv2d, "conv2d_bias_relu": conv2d_bias_relu, "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d, "batch_norm": batch_norm,
             "softmax": softmax, "log_softmax": log_softmax, "softmax_cross_entropy": softmax_cross_entropy,
             **ELEMENTWISE, **SHAPE_OPS, **GRAD}
    return [Kernel(op, fn, dtypes=DTYPES) for op, fn in sorted(named.items())]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True, order="C")


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
