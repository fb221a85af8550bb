"""Hook specifications of the two kinds of plugins (mark implementations with `opdispatch.hookimpl`).

**Backends** (entry point group ``opdispatch.backends``) own devices: each installed distribution
that declares such an entry point is one plugin providing one backend, and must implement all of
`opdispatch_backend_info`, `opdispatch_devices`, `opdispatch_kernels`, `opdispatch_from_numpy`
and `opdispatch_to_numpy`.

**Kernel providers** (entry point group ``opdispatch.providers``) add kernels to the devices of
backends they do not own (say, oneDNN kernels for ``numpy:0``) and must implement
`opdispatch_provider_info` and `opdispatch_provider_kernels`. A plugin is one or the other.

opdispatch calls each plugin's hooks itself, plugin by plugin and with keyword arguments only,
once when it loads the plugin (lazily, on first use), so a failing plugin is reported on its own
and never hides another; a backend's device probe (`opdispatch_devices`) runs in a thread of its
own, with a timeout, when that backend's devices are first needed (a forked child probes again
if the probe was still running at the fork), so a slow probe delays only that backend's devices. Kernel tables are built
from the answers, and per-op calls never go through pluggy.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pluggy

from .backend import BackendInfo, DeviceInfo, Kernel, ProviderInfo
from .device import Device

PROJECT = "opdispatch"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

BACKEND_HOOKS = ("opdispatch_backend_info", "opdispatch_devices", "opdispatch_kernels", "opdispatch_from_numpy",
                 "opdispatch_to_numpy")
"""The hooks a backend must implement (it may also implement `opdispatch_array_meta`)."""
PROVIDER_HOOKS = ("opdispatch_provider_info", "opdispatch_provider_kernels")
"""The hooks a kernel provider must implement."""


@hookspec
def opdispatch_backend_info() -> BackendInfo:
    """Return the backend's name (the device prefix, e.g. ``"opencl"``) and version.

    Must be cheap and must not import heavy runtime libraries.
    """


@hookspec
def opdispatch_devices() -> Sequence[DeviceInfo]:
    """Probe the machine and return the backend's devices (an empty list is fine).

    This is where heavy imports (a GPU runtime, an OpenCL ICD loader) belong. Each `DeviceInfo`
    becomes device ``<backend name>:<index>``: a probe publishes its own backend's devices only (an
    answer naming another backend's, an ``od.Device("numpy:3")`` say, fails the backend). Raise
    `opdispatch.backend.BackendUnavailable` with a reason when the backend cannot run here;
    the reason is shown by ``od.backends()`` and ``opdispatch devices``.
    """


@hookspec
def opdispatch_kernels() -> Iterable[Kernel]:
    """Return the backend's kernels, one `Kernel` per op it implements.

    Each kernel's function must accept the op's inputs positionally and its canonical
    attributes as keywords (see ``opdispatch.ops.OPS[name]``); a mismatch is reported
    when the plugin loads. Ops without a kernel run their decomposition when they have one.
    """


@hookspec
def opdispatch_from_numpy(array: np.ndarray, device: Device) -> Any:
    """Return a backend array on ``device`` holding a copy of the NumPy ``array``."""


@hookspec
def opdispatch_to_numpy(data: Any, device: Device) -> np.ndarray:
    """Return a NumPy array holding a copy of the backend array ``data`` living on ``device``."""


@hookspec
def opdispatch_array_meta(data: Any, device: Device) -> tuple[tuple[int, ...], np.dtype]:
    """Optional: the shape and dtype of the backend array ``data``. Without it, opdispatch reads
    ``data.shape`` and ``data.dtype`` (every kernel result is checked against the shape and dtype the
    op's schema inferred before it becomes a tensor)."""


@hookspec
def opdispatch_provider_info() -> ProviderInfo:
    """Return the provider's name, version and priority (> 0; backends' own kernels have 0)."""


@hookspec
def opdispatch_provider_kernels() -> Iterable[Kernel]:
    """Return the provider's kernels, each naming the backend whose devices it serves
    (``Kernel(..., backend="numpy")``); it receives and returns that backend's arrays."""
