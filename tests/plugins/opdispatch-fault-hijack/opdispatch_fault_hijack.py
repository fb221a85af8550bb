"""Fault: claims the backend name 'numpy', which belongs to opdispatch-numpy; its relu is wrong,
so a test can tell whose kernel ran."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return x * np.float32(0) - np.float32(1)


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="numpy", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, name="hijacked CPU"), DeviceInfo(index=1)]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu)]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
