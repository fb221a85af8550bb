"""Fault: its device probe hangs (an hour, or until a test sets RELEASE).

``ENTERED`` is set when the probe starts, ``ANSWERED`` when it returns."""

import threading

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="hangprobe", version="0.1.0")


@hookimpl
def opdispatch_devices():
    ENTERED.set()
    RELEASE.wait(3600)
    ANSWERED.set()
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


ENTERED, RELEASE, ANSWERED = threading.Event(), threading.Event(), threading.Event()
