"""In-process backend plugins for tests: a second CPU-like device with few kernels, and broken ones.

(The installed, entry-point-discovered third-party plugins live in tests/plugins/.)
"""

from __future__ import annotations

import types

import numpy as np

from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, BackendUnavailable, DeviceInfo, Kernel


class Box:
    """The 'mini' backend's array type, so tests can see where data lives."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _relu(x):
    return Box(np.maximum(x.array, 0))


def _add(a, b):
    return Box(a.array + b.array)


def _conv_no_groups(x, w, bias=None, *, stride, padding, dilation, groups):
    raise AssertionError("never called: supports() refuses it")


def _refuse_groups(metas, attrs):
    return "groups > 1 is not implemented" if attrs["groups"] > 1 else "only as a capability probe"


def make_mini(name: str = "mini", dtypes=("float32",), n_devices: int = 2) -> types.SimpleNamespace:
    """A plugin object: ``n_devices`` devices, relu and add only, arrays boxed in `Box`."""

    class Plugin:
        @hookimpl
        def opdispatch_backend_info(self):
            return BackendInfo(name=name, version="9.9")

        @hookimpl
        def opdispatch_devices(self):
            return [DeviceInfo(index=i, name=f"{name} device {i}", dtypes=dtypes) for i in range(n_devices)]

        @hookimpl
        def opdispatch_kernels(self):
            return [Kernel("relu", _relu, dtypes=dtypes), Kernel("add", _add, dtypes=dtypes),
                    Kernel("conv2d", _conv_no_groups, dtypes=dtypes, supports=_refuse_groups)]

        @hookimpl
        def opdispatch_from_numpy(self, array, device):
            return Box(np.array(array, copy=True))

        @hookimpl
        def opdispatch_to_numpy(self, data, device):
            return np.array(data.array, copy=True)

    return Plugin()


def make_unavailable() -> object:
    """A plugin whose probe says the hardware is missing."""

    class Plugin:
        @hookimpl
        def opdispatch_backend_info(self):
            return BackendInfo(name="nogpu", version="1.0")

        @hookimpl
        def opdispatch_devices(self):
            raise BackendUnavailable("no CUDA driver found")

        @hookimpl
        def opdispatch_kernels(self):
            return []

        @hookimpl
        def opdispatch_from_numpy(self, array, device):
            return array

        @hookimpl
        def opdispatch_to_numpy(self, data, device):
            return data

    return Plugin()


def make_broken(kind: str) -> object:
    """Plugins broken in one way each: 'probe-crash', 'bad-kernel', 'unknown-op', 'unknown-hook',
    'missing-hook', 'bad-hook-args', 'raising-kernel'."""

    class Plugin:
        @hookimpl
        def opdispatch_backend_info(self):
            return BackendInfo(name=f"broken-{kind}", version="0")

        @hookimpl
        def opdispatch_devices(self):
            if kind == "probe-crash":
                raise RuntimeError("driver exploded")
            return [DeviceInfo(index=0)]

        @hookimpl
        def opdispatch_kernels(self):
            if kind == "bad-kernel":
                return [Kernel("conv2d", lambda x, w: x)]
            if kind == "unknown-op":
                return [Kernel("conv3d", lambda x: x)]
            if kind == "raising-kernel":
                def relu(x):
                    raise IndexError("kernel bug")
                return [Kernel("relu", relu)]
            return []

        @hookimpl
        def opdispatch_from_numpy(self, array, device):
            return array

        @hookimpl
        def opdispatch_to_numpy(self, data, device):
            return data

    plugin = Plugin()
    if kind == "unknown-hook":
        Plugin.opdispatch_bogus = hookimpl(lambda self: None)
    if kind == "missing-hook":
        del Plugin.opdispatch_to_numpy
    if kind == "bad-hook-args":
        Plugin.opdispatch_kernels = hookimpl(lambda self, nonsense: [])
    return plugin
