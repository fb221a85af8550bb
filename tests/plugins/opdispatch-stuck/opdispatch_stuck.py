"""Test suite only: device ``stuck:0``, whose relu kernel hangs: every call returns only ``HANG_S`` (two
minutes) after the process's first call, so that a run that fails to cancel it still ends. Its probe
and transfers work, so the device is listed and a conformance run starts on it, then hangs in the
first relu case.
Not an ``opdispatch-fault-*`` plugin: `tests/test_faulty_plugins.py` runs the suite on those."""

import time

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

HANG_S = 120.0
_FIRST_CALL: list[float] = []


def relu(x):
    if not _FIRST_CALL:
        _FIRST_CALL.append(time.monotonic())
    time.sleep(max(0.0, _FIRST_CALL[0] + HANG_S - time.monotonic()))
    return np.maximum(x, np.float32(0))


@hookimpl
def opdispatch_backend_info():
    return BackendInfo(name="stuck", version="0.1.0", plugin_api=1)


@hookimpl
def opdispatch_devices():
    return [DeviceInfo(index=0, name="Stuck accelerator", dtypes=("float32",))]


@hookimpl
def opdispatch_kernels():
    return [Kernel("relu", relu, dtypes=("float32",))]


@hookimpl
def opdispatch_from_numpy(array, device):
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data, device):
    return np.array(data, copy=True)
