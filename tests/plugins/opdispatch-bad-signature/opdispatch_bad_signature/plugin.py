"""A valid backend except for one thing: its conv2d kernel takes only ``(x, w)``.

The conv2d schema passes ``x, w, bias`` positionally and ``stride, padding, dilation, groups``
as keywords, so opdispatch must reject the plugin when it loads, naming the kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return np.maximum(x, 0, dtype=x.dtype)


def conv2d(x, w):  # wrong: no bias input, no stride/padding/dilation/groups keywords
    raise AssertionError("never called: the plugin must be rejected at load time")


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="badsig", version="0.1.0", description="conv2d kernel with a bad signature")


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="Bad-signature device", dtypes=("float32",))]


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    return [Kernel("relu", relu, dtypes=("float32",)), Kernel("conv2d", conv2d, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
