"""The plugin module named by this distribution's ``opdispatch.backends`` entry point.

A deliberately small backend: one device, float32 only, and kernels for relu, add, mul, matmul
and sum. Every other op (conv2d among them) is missing, which the fallback tests rely on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

from . import __version__
from .array import TRANSFERS, FakeArray, unwrap, wrap

DTYPES = ("float32",)


def relu(x):
    return wrap(np.maximum(unwrap(x, "relu"), np.float32(0)), x)


def add(a, b):
    return wrap(unwrap(a, "add") + unwrap(b, "add"), a)


def mul(a, b):
    return wrap(unwrap(a, "mul") * unwrap(b, "mul"), a)


def matmul(a, b):
    return wrap(np.matmul(unwrap(a, "matmul"), unwrap(b, "matmul")), a)


def sum_(x, *, axis, keepdims):
    return wrap(np.sum(unwrap(x, "sum"), axis=axis, keepdims=keepdims), x)


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="fake", version=__version__, description="A fake float32 device for tests",
                       plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="Fake accelerator", dtypes=DTYPES, driver={"fake driver": __version__})]


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    named = {"relu": relu, "add": add, "mul": mul, "matmul": matmul, "sum": sum_}
    return [Kernel(op, fn, dtypes=DTYPES) for op, fn in sorted(named.items())]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> FakeArray:
    if device.backend != "fake":
        raise ValueError(f"fake backend asked to place data on {device}")
    TRANSFERS["from_numpy"] += 1
    return FakeArray(np.array(array, copy=True, order="C"), device.index)


@hookimpl
def opdispatch_to_numpy(data: FakeArray, device: Any) -> np.ndarray:
    if not isinstance(data, FakeArray) or data.index != device.index:
        raise TypeError(f"fake backend asked to copy {data!r} from {device}")
    TRANSFERS["to_numpy"] += 1
    return np.array(data._buf, copy=True)
