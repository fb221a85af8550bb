"""A usable device at run time: its kernel table (the candidate kernels of each op, in dispatch order,
and the caches dispatch fills from them) and its backend's transfer functions and array checks.
The registry builds one `DeviceRuntime` per device and installs its kernels; dispatch reads it."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from .backend import DeviceInfo, Kernel
from .device import Device
from .plugins import LoadedBackend


class KernelEntry(NamedTuple):
    """One candidate kernel of an op on a device, and where it comes from."""

    kernel: Kernel
    provider: str
    priority: int


class KernelTable(NamedTuple):
    """A device's kernels at one moment: ``candidates[op]``, the enabled kernels in dispatch order, and
    the caches dispatch fills from them (``choices``: call signature -> decision; ``fast_checked``:
    element-wise fast-path signature -> kernel function or None). A new table replaces the whole
    snapshot at once, so a decision is never cached beside candidates it was not made from."""

    candidates: dict[str, tuple[KernelEntry, ...]]
    choices: dict[Any, Any]
    fast_checked: dict[Any, Any]


class DeviceRuntime:
    """One usable device: its kernel table and the backend's transfer functions.

    ``table`` is the current `KernelTable`; ``fast`` maps ``(op, dtype)`` to the function of the
    first candidate for that dtype when it is unconditional (no ``supports``), what eager dispatch's
    fast path reads first.
    """

    __slots__ = ("device", "info", "backend", "hidden", "table", "fast", "from_numpy", "to_numpy", "_array_meta",
                 "array_types", "plain_arrays", "result_types")

    def __init__(self, device: Device, info: DeviceInfo, backend: LoadedBackend) -> None:
        self.device = device
        self.info = info
        self.backend = backend.name
        self.hidden = backend.hidden
        self.table = KernelTable({}, {}, {})
        self.fast: dict[tuple[str, Any], Callable[..., Any]] = {}
        self.from_numpy: Callable[[Any, Device], Any] = backend.from_numpy  # type: ignore[assignment]
        self.to_numpy: Callable[[Any, Device], Any] = backend.to_numpy  # type: ignore[assignment]
        self._array_meta = backend.array_meta
        self.array_types = backend.array_types
        # kernel results of these classes are read as plain arrays (their .shape and .dtype) first
        self.plain_arrays = backend.array_meta is None
        self.result_types: Any = backend.array_types or (object,)

    def describe(self, data: Any) -> Optional[tuple[tuple[int, ...], np.dtype]]:
        """The shape and dtype of backend array ``data`` (the backend's `opdispatch_array_meta`, else
        ``data.shape`` / ``data.dtype``), or None when ``data`` is not an array at all (nor of one of
        the backend's ``array_types``, where it declares them)."""
        if isinstance(data, (list, tuple, dict)) or data is None:
            return None
        if self.array_types and not isinstance(data, self.array_types):
            return None
        try:
            if self._array_meta is not None:
                shape, dtype = self._array_meta(data, self.device)
            else:
                shape, dtype = data.shape, data.dtype
            return tuple(int(d) for d in shape), np.dtype(dtype)
        except Exception:  # not an array of this backend
            return None

    def install(self, candidates: dict[str, tuple[KernelEntry, ...]]) -> None:
        """Replace the candidate kernels (and the tables derived from them)."""
        fast = {}
        for op, entries in candidates.items():
            for dtype in self.info.dtype_set:
                first = next((e for e in entries if dtype in e.kernel.dtype_set), None)
                if first is not None and first.kernel.supports is None:
                    fast[(op, dtype)] = first.kernel.fn
        self.table = KernelTable(candidates, {}, {})
        self.fast = fast

    @property
    def candidates(self) -> dict[str, tuple[KernelEntry, ...]]:
        """The enabled kernels of each op, in dispatch order."""
        return self.table.candidates

    def __repr__(self) -> str:
        return f"<DeviceRuntime {self.device} ({len(self.candidates)} ops with kernels)>"
