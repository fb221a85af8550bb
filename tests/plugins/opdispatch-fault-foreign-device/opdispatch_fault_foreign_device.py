"""Fault: backend 'foreigndev', whose device probe answers with one device of its own and one that
says it is numpy:3 (a DeviceInfo subclass with a ``backend`` field naming 'numpy')."""

from dataclasses import dataclass

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


@dataclass(frozen=True)
class ForeignInfo(DeviceInfo):
    backend: str = "numpy"


def relu(x):
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="foreigndev", version="0.1.0")


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0), ForeignInfo(index=3, name="a second NumPy CPU")]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu)]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
