"""Hook specifications a backend plugin implements (mark implementations with `opdispatch.hookimpl`).

Each installed distribution that declares an entry point in the group ``opdispatch.backends``
is one plugin providing one backend. opdispatch calls each plugin's hooks once when it loads
the plugin (lazily, on first use) and builds its kernel table from the answers; per-op calls
never go through pluggy. Hooks take keyword arguments only.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pluggy

from .backend import BackendInfo, DeviceInfo, Kernel
from .device import Device

PROJECT = "opdispatch"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def opdispatch_backend_info() -> BackendInfo:
    """Return the backend's name (the device prefix, e.g. ``"opencl"``) and version.

    Must be cheap and must not import heavy runtime libraries.
    """


@hookspec(firstresult=True)
def opdispatch_devices() -> Sequence[DeviceInfo]:
    """Probe the machine and return the backend's devices (an empty list is fine).

    This is where heavy imports (a GPU runtime, an OpenCL ICD loader) belong. Raise
    `opdispatch.backend.BackendUnavailable` with a reason when the backend cannot run here;
    the reason is shown by ``od.backends()`` and ``opdispatch devices``.
    """


@hookspec(firstresult=True)
def opdispatch_kernels() -> Iterable[Kernel]:
    """Return the backend's kernels, one `Kernel` per op it implements.

    Each kernel's function must accept the op's inputs positionally and its canonical
    attributes as keywords (see ``opdispatch.ops.OPS[name]``); a mismatch is reported
    when the plugin loads.
    """


@hookspec(firstresult=True)
def opdispatch_from_numpy(array: np.ndarray, device: Device) -> Any:
    """Return a backend array on ``device`` holding a copy of the NumPy ``array``."""


@hookspec(firstresult=True)
def opdispatch_to_numpy(data: Any, device: Device) -> np.ndarray:
    """Return a NumPy array holding a copy of the backend array ``data`` living on ``device``."""
