"""Hook specifications of the two kinds of plugins (mark implementations with `opdispatch.hookimpl`).

**Backends** (entry point group ``opdispatch.backends``) own devices: each installed distribution
that declares such an entry point is one plugin providing one backend, and must implement all of
`opdispatch_backend_info`, `opdispatch_devices`, `opdispatch_kernels`, `opdispatch_from_numpy`
and `opdispatch_to_numpy` (`BACKEND_HOOKS`); `opdispatch_array_meta` is optional. A missing
required hook fails the plugin at load, naming it.

**Kernel providers** (entry point group ``opdispatch.providers``) add kernels to the devices of
backends they do not own (say, oneDNN kernels for ``numpy:0``) and must implement
`opdispatch_provider_info` and `opdispatch_provider_kernels` (`PROVIDER_HOOKS`, both required). A
plugin is one or the other. One plugin object (a module, or an object whose methods are the hooks)
backs one backend or provider: several entry points naming one module fail after the first, saying
so; to ship several from one distribution, name one object per entry point
(``a = "pkg.plugin:ALPHA"``).

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
    """**Required of a backend.** Return the backend's name (the device prefix, e.g. ``"opencl"``),
    version and the plugin API it was written for (``BackendInfo(..., plugin_api=1)``, see
    `opdispatch.backend.PLUGIN_API`; a plugin built for another API fails to load, saying so).

    Must be cheap and must not import heavy runtime libraries.
    """


@hookspec
def opdispatch_devices() -> Sequence[DeviceInfo]:
    """**Required of a backend.** Probe the machine and return the backend's devices (an empty list is fine).

    This is where heavy imports (a GPU runtime, an OpenCL ICD loader) belong. Each `DeviceInfo`
    becomes device ``<backend name>:<index>``: a probe publishes its own backend's devices only (an
    answer naming another backend's, an ``od.Device("numpy:3")`` say, fails the backend). Raise
    `opdispatch.backend.BackendUnavailable` with a reason when the backend cannot run here;
    the reason is shown by ``od.backends()`` and ``opdispatch devices``.
    """


@hookspec
def opdispatch_kernels() -> Iterable[Kernel]:
    """**Required of a backend.** Return the backend's kernels: one `Kernel` per op it implements, or
    several for one op when their dtypes are disjoint (the call's dtype picks one). A few primitives
    suffice: ``opdispatch ops`` says which ops decompose into which.

    Each kernel's function must accept the op's inputs positionally and its canonical
    attributes as keywords (see ``opdispatch.ops.OPS[name]``); a mismatch is reported
    when the plugin loads. Ops without a kernel run their decomposition when they have one.
    """


@hookspec
def opdispatch_from_numpy(array: np.ndarray, device: Device) -> Any:
    """**Required of a backend.** Return a backend array on ``device`` holding a copy of the NumPy
    ``array`` (the caller may change ``array`` afterwards).

    ``array`` has native byte order and any shape (0-d and empty too); it need not be contiguous.
    Its dtype is one of the device's float dtypes (`DeviceInfo.dtypes`; others are refused before
    this hook) or **any integer or bool dtype, on every device**: int64 class labels, int32 or int64
    indices and bool masks reach a float32-only device too, and must come back unchanged through
    `opdispatch_to_numpy` (a device without integer memory keeps them as it can, host memory say).
    """


@hookspec
def opdispatch_to_numpy(data: Any, device: Device) -> np.ndarray:
    """**Required of a backend.** Return a NumPy array holding a copy of the backend array ``data``
    living on ``device`` (an array from `opdispatch_from_numpy` or a kernel result), with its shape
    and dtype; opdispatch may keep and change the copy."""


@hookspec
def opdispatch_array_meta(data: Any, device: Device) -> tuple[tuple[int, ...], np.dtype]:
    """**Optional** (backends). The shape and dtype of the backend array ``data``. Without it, opdispatch reads
    ``data.shape`` and ``data.dtype`` (every kernel result is checked against the shape and dtype the
    op's schema inferred before it becomes a tensor)."""


@hookspec
def opdispatch_provider_info() -> ProviderInfo:
    """**Required of a kernel provider.** Return the provider's name, version, priority (> 0;
    backends' own kernels have 0) and plugin API (``ProviderInfo(..., plugin_api=1)``)."""


@hookspec
def opdispatch_provider_kernels() -> Iterable[Kernel]:
    """**Required of a kernel provider.** Return the provider's kernels, each naming the backend whose devices it serves
    (``Kernel(..., backend="numpy")``); it receives and returns that backend's arrays."""
