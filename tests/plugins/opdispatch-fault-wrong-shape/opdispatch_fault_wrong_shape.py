"""Fault: its relu kernel (relu has one output) returns an array of the wrong shape."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return np.maximum(x, np.float32(0)).reshape(-1)[:1]


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="wrongshape", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, dtypes=("float32",))]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
