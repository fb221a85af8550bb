"""Backend 'twin', also claimed by opdispatch-fault-twin-b; this one's distribution name sorts
first, so it is the one loaded (its entry point name sorts last)."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="twin", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, name="twin A", dtypes=("float32",))]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
