"""Fault: claims the backend name 'twin', which opdispatch-fault-twin-a claims too; its entry point
name sorts first. Its relu is wrong, so a test can tell whose kernel ran."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return x * np.float32(0) - np.float32(2)


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="twin", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, name="twin B", dtypes=("float32",))]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
