"""Fault: its device probe raises a BaseException subclass (not an Exception)."""

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, Kernel


def relu(x):
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="baseprobe", version="0.1.0")


@hookimpl
def opdispatch_devices():
    raise ProbeAbort("baseprobe: the driver aborted the probe")


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)


class ProbeAbort(BaseException):
    """Not an Exception: what a careless driver binding might raise."""
