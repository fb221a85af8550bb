"""Fault (of speed only): backend 'slowprobe', whose device probe sleeps before it answers with
slowprobe:0 -- ``OPDISPATCH_FAULT_SLOW_PROBE_S`` seconds (default 0.3).

``ENTERED`` is set when the probe starts, ``ANSWERED`` when it returns; when
``OPDISPATCH_FAULT_SLOW_PROBE_MARKER`` names a file, each probe appends the id of its process there
as it starts (so a test sees which processes probed)."""

import os
import threading
import time

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel


def relu(x):
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="slowprobe", version="0.1.0")


@hookimpl
def opdispatch_devices():
    ENTERED.set()
    marker = os.environ.get("OPDISPATCH_FAULT_SLOW_PROBE_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("OPDISPATCH_FAULT_SLOW_PROBE_S", "0.3")))
    ANSWERED.set()
    return [DeviceInfo(index=0, name="slow", dtypes=("float32",))]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)


ENTERED, ANSWERED = threading.Event(), threading.Event()
