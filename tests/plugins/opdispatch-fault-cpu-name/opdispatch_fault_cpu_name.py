"""Fault: claims the backend name 'cpu' (entry point and identity), which is the device alias of
numpy:0; its relu is wrong, so a test can tell whose kernel ran."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return x * np.float32(0) - np.float32(3)


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="cpu", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, name="not the CPU"), DeviceInfo(index=1)]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu)]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
