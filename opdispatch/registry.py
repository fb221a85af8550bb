"""The kernel table: loaded backends and kernel providers, their devices and per-device kernels.

Plugins are discovered lazily, on the first call that needs a device, so ``import opdispatch``
stays light. Each device's runtime holds, per op, its candidate kernels in the order dispatch
tries them: providers by priority (highest first, then by name), the backend's own kernels last.
Per-op dispatch reads `DeviceRuntime` attributes and dicts; it never calls pluggy.

A provider (or a backend's own kernels, by the backend's name) can be disabled and enabled again,
from code (`disable_provider`) or for a whole process with the environment variable
``OPDISPATCH_DISABLE_PROVIDERS=name,name``.

Device probes run off the dispatch path, and only when needed: loading a backend (import,
identity, kernels) is synchronous, but its ``opdispatch_devices`` runs in a daemon thread of its own,
started by the first call that needs that backend's devices. A lookup of a device of backend B
(`Registry.runtime`, `Registry.has_device`) starts and waits for B's probe only (running on
``numpy:0`` never starts the OpenCL or CuPy probe); `Registry.devices`, `Registry.backends` and
`Registry.status` start and wait for the probes they report on (`Registry.start_probes` starts
probes without waiting). Each wait lasts at most until the probe's deadline: a probe that has not
answered `PROBE_TIMEOUT` seconds after it started (``OPDISPATCH_PROBE_TIMEOUT`` overrides it) leaves
its backend "unavailable", and an answer that comes later is not used (the reason says so; `reload`
probes again). Once a device's runtime exists, looking it up is one dict read, without a lock. At
interpreter exit, probes still in flight are waited for until their deadlines (or a Ctrl-C): a daemon
thread that comes back from native code (a GPU or OpenCL runtime) while the interpreter shuts down
aborts the process.

Fork safety: before ``os.fork()`` the registry's locks are taken (each for at most `FORK_LOCK_WAIT`
seconds, so a fork never hangs on a stuck holder), so the child starts from a consistent registry; in
the child they are released, or recreated where they could not be taken (their holder does not exist
there). A probe that was running in the parent has no thread in the child: the child probes that
backend again, with a deadline of its own, when it first needs it (a probe that had answered or timed
out stays as it was).

Of several plugins (entry points) claiming one name, the one from the first distribution in name
order wins, whatever the entry-point order; the others are reported failed, naming it.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from . import reference_backend
from .backend import BUILTIN_PRIORITY
from .device import Device
from .errors import DeviceError, InvalidArgumentError
from .ops import get_schema
from .plugins import (BACKEND_GROUP, CORE_DIST, PROVIDER_GROUP, LoadedBackend, LoadedProvider,
                      describe_entry_point, dist_name, entry_points, error_text, is_user_interrupt, kind_of,
                      load_backend, load_provider, make_manager, probe_backend)
from .runtime import DeviceRuntime, KernelEntry

DISABLE_ENV = "OPDISPATCH_DISABLE_PROVIDERS"
PROBE_TIMEOUT = 20.0
"""Seconds a backend's device probe may take before its backend is reported unavailable."""
PROBE_TIMEOUT_ENV = "OPDISPATCH_PROBE_TIMEOUT"
_WAIT_SLICE = 0.1  # waits for a probe wake up this often, so the user's Ctrl-C is seen promptly
FORK_LOCK_WAIT = 1.0
"""Seconds ``os.fork()`` waits for each registry lock another thread holds before it forks anyway."""


def probe_timeout() -> float:
    """`PROBE_TIMEOUT`, or the seconds ``OPDISPATCH_PROBE_TIMEOUT`` gives (a positive number)."""
    text = os.environ.get(PROBE_TIMEOUT_ENV, "").strip()
    if not text:
        return PROBE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        warnings.warn(f"{PROBE_TIMEOUT_ENV}={text!r} is not a positive number of seconds; using {PROBE_TIMEOUT:g}",
                      RuntimeWarning, stacklevel=2)
        return PROBE_TIMEOUT
    return value


class _Probe:
    """One backend's device probe in flight: its thread, deadline and state ("running", "answered",
    "timed out"; changed under the registry's lock). ``settled`` is set once the state is final."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.state = "running"
        self.settled = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def wait(self) -> bool:
        """Wait until it settles or its deadline passes (in slices: a Ctrl-C is seen); settled or not."""
        while not self.settled.is_set():
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            self.settled.wait(min(left, _WAIT_SLICE))
        return self.settled.is_set()


_IN_FLIGHT: set[_Probe] = set()  # probes whose thread has not returned, in every registry
_IN_FLIGHT_LOCK = threading.RLock()  # RLocks all: a fork must know whether the forking thread holds one
_AT_EXIT: list[bool] = []  # [True] once the exit hook is registered (at the first probe, not at import)


def _wait_for_probes_at_exit() -> None:
    """At interpreter exit: wait for the probes in flight, each until its deadline (a Ctrl-C ends it)."""
    with _IN_FLIGHT_LOCK:
        probes = list(_IN_FLIGHT)
    try:
        for probe in probes:
            probe.wait()
    except KeyboardInterrupt:
        pass


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
    hidden: bool = False

    def __str__(self) -> str:
        head = f"{self.name} {self.version or '?'}: {self.status}"
        return f"{head} ({self.reason})" if self.reason else head


@dataclass(frozen=True)
class ProviderStatus:
    """What ``od.providers()`` reports for one kernel provider."""

    name: str
    status: str  # "loaded" | "failed"
    reason: str
    version: str
    priority: int
    targets: tuple[str, ...]
    ops: tuple[str, ...]
    origin: str
    enabled: bool

    def __str__(self) -> str:
        head = f"{self.name} {self.version or '?'}: {self.status}"
        if self.status == "loaded":
            head += f", priority {self.priority}, for {', '.join(self.targets) or 'no backend'}"
            head += "" if self.enabled else " (disabled)"
        return f"{head} ({self.reason})" if self.reason else head


@dataclass(frozen=True)
class KernelListing:
    """One row of ``od.kernels()``: a kernel an op may run on a device, in dispatch order."""

    device: Device
    op: str
    provider: str
    priority: int
    dtypes: tuple[str, ...]
    conditional: bool  # it declares supports(): some calls may be declined
    enabled: bool

    def __str__(self) -> str:
        cond = ", conditional" if self.conditional else ""
        off = "" if self.enabled else " (disabled)"
        return (f"{self.op} on {self.device}: {self.provider} "
                f"(priority {self.priority}; {', '.join(self.dtypes)}{cond}){off}")


def _disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


class Registry:
    """Loaded backends, kernel providers and the device runtimes built from them."""

    def __init__(self) -> None:
        self._pm = make_manager()
        self._backends: dict[str, LoadedBackend] = {}
        self._providers: dict[str, LoadedProvider] = {}
        self._runtimes: dict[Device, DeviceRuntime] = {}
        self._probes: dict[str, _Probe] = {}  # backend name -> its device probe (once started)
        self._plugins: dict[str, object] = {}  # backend name -> its plugin object, while its probe may (re)run
        self._unprobed: set[str] = set()  # backends whose probe has not been started (lazily, when needed)
        self._disabled: set[str] = _disabled_from_env()
        self._lock = threading.RLock()
        self.generation = 0  # bumped whenever any device's kernels change (compiled graphs key on it)
        with self._lock:
            self._add(self._load(reference_backend, reference_backend.NAME,
                                 "built in (opdispatch.reference_backend)", CORE_DIST), reference_backend)
        _REGISTRIES.add(self)

    # -- loading ---------------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Load every installed backend, then every installed provider, each in isolation (their device
        probes start when their devices are first needed). Of plugins claiming one name, the one
        from the first distribution in name order (then entry-point name) is kept, the others fail."""
        batch: list[tuple[tuple[str, str, str], Any, object]] = []  # (rank, loaded, plugin)
        for group in (BACKEND_GROUP, PROVIDER_GROUP):
            for ep in entry_points(group):
                origin, dist = describe_entry_point(ep), dist_name(ep)
                try:
                    plugin = ep.load()
                except BaseException as exc:  # a plugin that fails (or exits) at import breaks nothing else
                    if is_user_interrupt(exc):
                        raise
                    failed: Any = (LoadedBackend if group == BACKEND_GROUP else LoadedProvider)(
                        name=ep.name, origin=origin, status="failed",
                        reason=f"import failed: {error_text(exc)}")
                    batch.append(((dist or "", ep.name, ep.value), failed, None))
                    continue
                with self._lock:
                    batch.append(((dist or "", ep.name, ep.value), self._load(plugin, ep.name, origin, dist), plugin))
        with self._lock:
            winners: dict[str, Any] = {}
            for _, loaded, plugin in sorted(batch, key=lambda item: item[0]):
                if loaded.status == "failed":
                    continue
                winner = winners.setdefault(loaded.name, loaded)
                if winner is not loaded:
                    kind = "provider" if isinstance(loaded, LoadedProvider) else "backend"
                    loaded.status, loaded.reason = "failed", (
                        f"{kind} name {loaded.name!r} is already provided by another plugin: {winner.origin} "
                        f"(of plugins claiming one name, the one from the first distribution by name is loaded)")
                    self._pm.unregister(plugin)
            for _, loaded, plugin in sorted(batch, key=lambda item: item[1].status == "failed"):
                self._add(loaded, plugin)  # the kept ones first: they get the names

    def add_plugin(self, plugin: object, name: Optional[str] = None,
                   origin: str = "registered at run time", dist: Optional[str] = None) -> Any:
        """Load one plugin object (a module or any object with hookimpls), backend or provider, and
        return its status (`BackendStatus` or `ProviderStatus`), once a backend's probe has answered
        (or timed out). ``dist``: the distribution it comes from (only that of a reserved name may
        claim it)."""
        with self._lock:
            label = name if name else getattr(plugin, "__name__", type(plugin).__name__)
            loaded = self._load(plugin, label, origin, dist)
            self._add(loaded, plugin)
        return self.status(loaded.name)

    def _load(self, plugin: object, label: str, origin: str, dist: Optional[str]) -> Any:
        taken = {n for n, b in self._backends.items() if b.status != "failed"} | \
                {n for n, p in self._providers.items() if p.status != "failed"}
        if kind_of(plugin) == "provider":
            return load_provider(self._pm, plugin, label, origin, taken, dist)
        return load_backend(self._pm, plugin, label, origin, taken, dist)

    def _add(self, loaded: Any, plugin: object = None) -> None:
        table: dict = self._providers if isinstance(loaded, LoadedProvider) else self._backends
        name = loaded.name
        if name in table and loaded.status == "failed":
            name = f"{name} ({loaded.origin})"  # keep the one there; still report the broken one
            loaded.name = name
        table[name] = loaded
        self._rebuild()
        if isinstance(loaded, LoadedBackend) and loaded.status == "probing":
            self._plugins[name] = plugin
            self._unprobed.add(name)

    # -- device probes -----------------------------------------------------------------------------
    def start_probes(self, names: Optional[Iterable[str]] = None) -> None:
        """Start the device probes of backends ``names`` (default: every backend) that have not started
        yet, without waiting for them."""
        with self._lock:
            for name in sorted(self._unprobed if names is None else set(names) & self._unprobed):
                self._unprobed.discard(name)
                self._start_probe(self._backends[name], self._plugins[name])

    def probe_state(self, name: str) -> str:
        """Where backend ``name``'s device probe is: "not started", "running", "answered" or "timed out"
        ("none" for a name that has no probe: a failed plugin, a provider, an unknown name). Never
        starts nor waits for it."""
        with self._lock:
            probe = self._probes.get(name)
            if probe is not None:
                return probe.state
            return "not started" if name in self._unprobed else "none"

    def _start_probe(self, backend: LoadedBackend, plugin: object) -> None:
        probe = _Probe(probe_timeout())
        self._probes[backend.name] = probe
        probe.thread = threading.Thread(target=self._run_probe, args=(backend, plugin, probe), daemon=True,
                                        name=f"opdispatch-probe-{backend.name}")
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.add(probe)
            if not _AT_EXIT:
                atexit.register(_wait_for_probes_at_exit)
                _AT_EXIT.append(True)
        probe.thread.start()

    def _run_probe(self, backend: LoadedBackend, plugin: object, probe: _Probe) -> None:
        """The probe thread: run the plugin's probe (no lock held), then publish its answer."""
        try:
            status, reason, devices = probe_backend(backend)
            with self._lock:
                if probe.state == "timed out":
                    backend.reason += (f" (it answered {time.monotonic() - probe.started:.1f} s after it started, "
                                       f"too late: not used in this process; opdispatch.registry.reload() probes "
                                       f"again)")
                    return
                probe.state = "answered"
                self._plugins.pop(backend.name, None)
                backend.status, backend.reason, backend.devices = status, reason, devices
                if status == "failed" and self._pm.is_registered(plugin):
                    self._pm.unregister(plugin)
                for info in devices:
                    dev = Device(backend.name, info.index)
                    rt = DeviceRuntime(dev, info, backend)
                    rt.install(self._entries(rt, enabled_only=True))
                    self._runtimes[dev] = rt  # published with its kernel table in place
                if devices:
                    self.generation += 1
        finally:
            probe.settled.set()
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.discard(probe)

    def _probing(self) -> list[str]:
        """The backends whose probe has not settled: not started yet, or running."""
        with self._lock:
            return sorted(self._unprobed | {name for name, probe in self._probes.items() if not probe.settled.is_set()})

    def _wait(self, names: Iterable[str]) -> None:
        """Start (if need be) and wait for the device probes of backends ``names``, each until its
        deadline; mark those that have not answered by then unavailable. Never waits for the probe of
        the calling thread."""
        names = list(names)
        if self._unprobed:
            self.start_probes(names)
        for name in names:
            probe = self._probes.get(name)
            if probe is None or probe.thread is threading.current_thread() or probe.wait():
                continue
            with self._lock:
                if probe.state == "running":
                    probe.state = "timed out"
                    backend = self._backends[name]
                    backend.status = "unavailable"
                    backend.reason = f"device probe did not answer within {probe.timeout:g} s"
                    self._plugins.pop(name, None)
                    probe.settled.set()

    # -- fork safety -------------------------------------------------------------------------------
    def _after_fork_in_child(self) -> None:
        """In a forked child (its locks already fixed): forget the probes whose thread stayed in the
        parent, so the next lookup probes those backends again; settle the others' events afresh."""
        for name, probe in list(self._probes.items()):
            if probe.state == "running" and name in self._plugins:
                del self._probes[name]
                self._unprobed.add(name)
            elif not probe.settled.is_set():  # its thread was between publishing and settling it
                probe.settled = threading.Event()
                probe.settled.set()

    def _entries(self, rt: DeviceRuntime, enabled_only: bool) -> dict[str, tuple[KernelEntry, ...]]:
        """Per op, the kernels for ``rt``'s device in dispatch order: providers by priority, then name;
        the backend's own last."""
        entries: dict[str, list[KernelEntry]] = {}
        if not (enabled_only and rt.backend in self._disabled):
            for op, ks in self._backends[rt.backend].kernels.items():
                entries.setdefault(op, []).extend(KernelEntry(k, rt.backend, BUILTIN_PRIORITY) for k in ks)
        for p in self._providers.values():
            if p.status != "loaded" or (enabled_only and p.name in self._disabled) or rt.hidden:
                continue  # a hidden backend (the reference oracle) runs its own kernels only
            for k in p.kernels:
                if k.backend == rt.backend:
                    entries.setdefault(k.op, []).append(KernelEntry(k, p.name, p.priority))
        return {op: tuple(sorted(es, key=lambda e: (-e.priority, e.provider))) for op, es in sorted(entries.items())}

    def _rebuild(self) -> None:
        """Recompute every device's candidate kernels from its backend and the enabled providers."""
        for rt in self._runtimes.values():
            rt.install(self._entries(rt, enabled_only=True))
        self.generation += 1

    # -- enabling and disabling ------------------------------------------------------------------
    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable the kernels of provider ``name`` (or a backend's own kernels, by its name)."""
        with self._lock:
            if name not in self.kernel_sources():
                raise InvalidArgumentError(f"{'enable' if enabled else 'disable'}_provider: argument 'name' got "
                                           f"{name!r}; allowed: a loaded provider or backend: {self.kernel_sources()}")
            (self._disabled.discard if enabled else self._disabled.add)(name)
            self._rebuild()

    def kernel_sources(self) -> list[str]:
        """The names kernels can come from: loaded providers and loaded backends (those still probing
        too: naming one never waits for its probe)."""
        with self._lock:
            return sorted({n for n, p in self._providers.items() if p.status == "loaded"}
                          | {n for n, b in self._backends.items() if b.status in ("loaded", "probing")})

    def disabled(self) -> set[str]:
        """The names whose kernels are disabled."""
        return set(self._disabled)

    # -- queries -----------------------------------------------------------------------------------
    def status(self, name: str) -> Any:
        """The `BackendStatus` or `ProviderStatus` of plugin ``name`` (a backend's once its probe has
        answered or timed out)."""
        self._wait([name])
        with self._lock:
            return self._status(name)

    def _status(self, name: str, provider: bool = False) -> Any:
        if name in self._providers and (provider or name not in self._backends):
            p = self._providers[name]
            return ProviderStatus(name=p.name, status=p.status, reason=p.reason, version=p.version,
                                  priority=p.priority, targets=p.targets,
                                  ops=tuple(sorted({k.op for k in p.kernels})), origin=p.origin,
                                  enabled=p.name not in self._disabled)
        b = self._backends[name]
        devices = tuple(Device(b.name, d.index) for d in b.devices) if b.status == "loaded" else ()
        return BackendStatus(name=b.name, status=b.status, reason=b.reason, version=b.version, devices=devices,
                             ops=tuple(sorted(b.kernels)), origin=b.origin, hidden=b.hidden)

    def backends(self, hidden: bool = False) -> Mapping[str, BackendStatus]:
        """Every backend seen (hidden ones only when asked), by name, in name order."""
        self._wait(self._probing())
        with self._lock:
            return {name: self._status(name) for name in sorted(self._backends)
                    if hidden or not self._backends[name].hidden}

    def providers(self) -> Mapping[str, ProviderStatus]:
        """Every kernel provider seen, by name, in name order."""
        with self._lock:
            return {name: self._status(name, provider=True) for name in sorted(self._providers)}

    def devices(self, hidden: bool = False) -> list[Device]:
        """Every available device (hidden backends' only when asked), ordered by backend then index,
        once every device probe has answered or timed out."""
        self._wait(self._probing())
        return self._listed(hidden)

    def has_device(self, device: Device, hidden: bool = False) -> bool:
        """Whether ``device`` is available (``device in devices(hidden)``), waiting for the probe of its
        own backend only."""
        self._wait([device.backend])
        rt = self._runtimes.get(device)
        return rt is not None and (hidden or not rt.hidden)

    def _listed(self, hidden: bool = False) -> list[Device]:
        with self._lock:
            return sorted((d for d, rt in self._runtimes.items() if hidden or not rt.hidden),
                          key=lambda d: (d.backend, d.index))

    def kernels(self, devices: Iterable[Device], op: Optional[str] = None) -> list[KernelListing]:
        """The kernels each op may run on each of ``devices``, in dispatch order (disabled ones too)."""
        if op is not None:
            get_schema(op)  # an unknown op: the error lists the known ones
        rows = []
        for dev in devices:
            rt = self.runtime(dev)
            with self._lock:
                table = self._entries(rt, enabled_only=False)
            for name, entries in table.items():
                if op is not None and name != op:
                    continue
                for e in entries:
                    rows.append(KernelListing(dev, name, e.provider, e.priority,
                                              tuple(sorted(d.name for d in e.kernel.dtype_set)),
                                              e.kernel.supports is not None, e.provider not in self._disabled))
        return rows

    def runtime(self, device: Device) -> DeviceRuntime:
        """The runtime of ``device``, or a `DeviceError` that says why it cannot be used. Waits for the
        probe of ``device``'s backend only (until its deadline), never for another backend's, unless it
        has to raise (the error lists the available devices)."""
        rt = self._runtimes.get(device)
        if rt is not None:
            return rt
        self._wait([device.backend])
        rt = self._runtimes.get(device)
        if rt is not None:
            return rt
        backend = self._backends.get(device.backend)
        available = ", ".join(map(str, self.devices())) or "none"  # an error: it may wait for every probe
        if backend is None:
            raise DeviceError(f"device {device}: no backend named {device.backend!r} is installed; "
                              f"available devices: {available}")
        if backend.status != "loaded":
            raise DeviceError(f"device {device}: backend {backend.name!r} is {backend.status}: {backend.reason}; "
                              f"available devices: {available}")
        raise DeviceError(f"device {device}: backend {backend.name!r} has devices "
                          f"{[str(Device(backend.name, d.index)) for d in backend.devices]}; "
                          f"available devices: {available}")


_REGISTRY: Optional[Registry] = None
_INIT_LOCK = threading.RLock()
_REGISTRIES: "weakref.WeakSet[Registry]" = weakref.WeakSet()  # every registry alive, for the fork hooks
_FORK_HELD: dict[int, list[Any]] = {}  # forking thread's ident -> the locks its fork took


def _fork_locks() -> list[Any]:
    """Every registry lock, in the order they are taken (`_INIT_LOCK` first, `_IN_FLIGHT_LOCK` last)."""
    return [_INIT_LOCK, *(reg._lock for reg in list(_REGISTRIES)), _IN_FLIGHT_LOCK]


def _before_fork() -> None:
    """Take every registry lock (each for at most `FORK_LOCK_WAIT` s), so the child's registry is whole."""
    held = _FORK_HELD.setdefault(threading.get_ident(), [])  # recorded as taken: an interrupt leaks none
    for lock in _fork_locks():
        if lock.acquire(timeout=FORK_LOCK_WAIT):
            held.append(lock)


def _after_fork_in_parent() -> None:
    """Release the locks `_before_fork` took."""
    for lock in reversed(_FORK_HELD.pop(threading.get_ident(), [])):
        lock.release()


def _after_fork_in_child() -> None:
    """In the child: release the locks the fork took (this thread owns them here too), recreate those it
    could not take (their holder has no thread here), and re-arm the probes left running in the parent."""
    global _INIT_LOCK, _IN_FLIGHT_LOCK
    held = _FORK_HELD.pop(threading.get_ident(), [])
    _FORK_HELD.clear()
    ours = {id(lock) for lock in held}
    for lock in reversed(held):
        lock.release()
    if id(_INIT_LOCK) not in ours:
        _INIT_LOCK = threading.RLock()
    if id(_IN_FLIGHT_LOCK) not in ours:
        _IN_FLIGHT_LOCK = threading.RLock()
    _IN_FLIGHT.clear()  # no probe thread exists here
    for reg in list(_REGISTRIES):
        if id(reg._lock) not in ours:
            reg._lock = threading.RLock()
        with reg._lock:
            reg._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


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


def register_plugin(plugin: object, name: Optional[str] = None) -> Any:
    """Load a plugin object that is not installed as an entry point (embedding, tests): a backend or a
    kernel provider; returns its `BackendStatus` or `ProviderStatus`."""
    return registry().add_plugin(plugin, name=name)


def reload() -> Registry:
    """Forget every loaded plugin and discover the installed plugins again.

    Tensors created before keep working only if their backend is loaded again.
    """
    global _REGISTRY
    with _INIT_LOCK:
        _REGISTRY = None
    return registry()
