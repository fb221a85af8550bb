"""The kernel table: loaded backends, their devices and per-device kernels, built once.

Plugins are discovered lazily, on the first call that needs a device, so ``import opdispatch``
stays light. Per-op dispatch reads `DeviceRuntime` attributes and dicts; it never calls pluggy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from .backend import DeviceInfo, Kernel
from .device import Device
from .errors import DeviceError
from .plugins import LoadedBackend, describe_entry_point, entry_points, load_backend, make_manager


@dataclass(frozen=True)
class BackendStatus:
    """What ``od.backends()`` reports for one backend."""

    name: str
    status: str  # "loaded" | "unavailable" | "failed"
    reason: str
    version: str
    devices: tuple[Device, ...]
    ops: tuple[str, ...]
    origin: str

    def __str__(self) -> str:
        head = f"{self.name} {self.version or '?'}: {self.status}"
        return f"{head} ({self.reason})" if self.reason else head


class DeviceRuntime:
    """One usable device: its kernels and the backend's transfer functions.

    ``fast`` maps ``(op, dtype)`` to a kernel function that needs no capability check, the
    table eager dispatch's fast path reads.
    """

    __slots__ = ("device", "info", "backend", "kernels", "fast", "from_numpy", "to_numpy")

    def __init__(self, device: Device, info: DeviceInfo, backend: LoadedBackend) -> None:
        self.device = device
        self.info = info
        self.backend = backend.name
        self.kernels: dict[str, Kernel] = dict(backend.kernels)
        self.fast: dict[tuple[str, Any], Callable[..., Any]] = {
            (k.op, dt): k.fn for k in self.kernels.values() if k.supports is None
            for dt in k.dtype_set & info.dtype_set}
        self.from_numpy: Callable[[Any, Device], Any] = backend.from_numpy  # type: ignore[assignment]
        self.to_numpy: Callable[[Any, Device], Any] = backend.to_numpy  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<DeviceRuntime {self.device} ({len(self.kernels)} kernels)>"


class Registry:
    """Loaded backends and their device runtimes."""

    def __init__(self) -> None:
        self._pm = make_manager()
        self._backends: dict[str, LoadedBackend] = {}
        self._runtimes: dict[Device, DeviceRuntime] = {}
        self._lock = threading.RLock()

    def load_entry_points(self) -> None:
        """Load every installed plugin of the ``opdispatch.backends`` group, each in isolation."""
        for ep in entry_points():
            origin = describe_entry_point(ep)
            try:
                plugin = ep.load()
            except Exception as exc:  # a plugin that fails to import must not break the others
                self._add(LoadedBackend(name=ep.name, origin=origin, status="failed",
                                        reason=f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self.add_plugin(plugin, name=ep.name, origin=origin)

    def add_plugin(self, plugin: object, name: Optional[str] = None, origin: str = "registered at run time") -> BackendStatus:
        """Load one plugin object (a module or any object with hookimpls) and return its status."""
        with self._lock:
            taken = {n for n, b in self._backends.items() if b.status != "failed"}
            loaded = load_backend(self._pm, plugin, name or getattr(plugin, "__name__", type(plugin).__name__),
                                  origin, taken)
            self._add(loaded)
            return self.status(loaded.name)

    def _add(self, loaded: LoadedBackend) -> None:
        name = loaded.name
        if name in self._backends and loaded.status == "failed" and self._backends[name].status != "failed":
            name = f"{name} ({loaded.origin})"  # keep the working one; still report the broken one
            loaded.name = name
        self._backends[name] = loaded
        for info in loaded.devices if loaded.status == "loaded" else ():
            dev = Device(name, info.index)
            self._runtimes[dev] = DeviceRuntime(dev, info, loaded)

    def status(self, name: str) -> BackendStatus:
        """The `BackendStatus` of backend ``name``."""
        b = self._backends[name]
        devices = tuple(Device(b.name, d.index) for d in b.devices) if b.status == "loaded" else ()
        return BackendStatus(name=b.name, status=b.status, reason=b.reason, version=b.version, devices=devices,
                             ops=tuple(sorted(b.kernels)), origin=b.origin)

    def backends(self) -> Mapping[str, BackendStatus]:
        """Every backend seen, by name, in name order."""
        return {name: self.status(name) for name in sorted(self._backends)}

    def devices(self) -> list[Device]:
        """Every available device, ordered by backend then index."""
        return sorted(self._runtimes, key=lambda d: (d.backend, d.index))

    def runtime(self, device: Device) -> DeviceRuntime:
        """The runtime of ``device``, or a `DeviceError` that says why it cannot be used."""
        rt = self._runtimes.get(device)
        if rt is not None:
            return rt
        backend = self._backends.get(device.backend)
        available = ", ".join(map(str, self.devices())) or "none"
        if backend is None:
            raise DeviceError(f"device {device}: no backend named {device.backend!r} is installed; "
                              f"available devices: {available}")
        if backend.status != "loaded":
            raise DeviceError(f"device {device}: backend {backend.name!r} is {backend.status}: {backend.reason}; "
                              f"available devices: {available}")
        raise DeviceError(f"device {device}: backend {backend.name!r} has devices "
                          f"{[str(Device(backend.name, d.index)) for d in backend.devices]}; available devices: {available}")


_REGISTRY: Optional[Registry] = None
_INIT_LOCK = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, loading the installed plugins on first use."""
    global _REGISTRY
    reg = _REGISTRY
    if reg is None:
        with _INIT_LOCK:
            if _REGISTRY is None:
                fresh = Registry()
                fresh.load_entry_points()
                _REGISTRY = fresh
            reg = _REGISTRY
    return reg


def register_plugin(plugin: object, name: Optional[str] = None) -> BackendStatus:
    """Load a backend plugin object that is not installed as an entry point (embedding, tests)."""
    return registry().add_plugin(plugin, name=name)


def reload() -> Registry:
    """Forget every loaded backend and discover the installed plugins again.

    Tensors created before keep working only if their backend is loaded again.
    """
    global _REGISTRY
    with _INIT_LOCK:
        _REGISTRY = None
    return registry()
