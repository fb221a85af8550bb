"""Finding plugins (backends and kernel providers) and loading each one in isolation.

Entry points in the groups ``opdispatch.backends`` and ``opdispatch.providers`` are iterated
one by one (pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to
import). Every step of loading a plugin -- import, hook validation, its declarations, the device
probe -- is guarded, so a broken plugin is reported by name with the reason and the rest keep
working. A plugin's own ``SystemExit`` (or any other exception but the user's Ctrl-C) is that
plugin's failure.

Loading a backend (`load_backend`) stops short of its device probe: the registry runs each
backend's probe (`probe_backend`) in a thread of its own, so a slow or hanging probe holds up only
the devices of that backend. The names ``numpy``, ``opencl``, ``cupy`` and ``reference`` belong to
their distributions (`RESERVED_NAMES`): a plugin from any other distribution claiming one fails. The
device aliases (`ALIAS_NAMES`: ``cpu``, which means ``numpy:0``) name no plugin at all, and a probe
publishes its own backend's devices only (`probe_backend`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import pluggy

from . import hookspecs
from .backend import (BUILTIN_PRIORITY, LAYOUTS, PLUGIN_API, SUPPORTED_PLUGIN_APIS, BackendInfo, BackendUnavailable,
                      DeviceInfo, Kernel, ProviderInfo)
from .device import CPU_ALIAS, DEFAULT_DEVICE, Device
from .dtypes import FLOAT_DTYPES, KERNEL_DTYPES
from .ops import OPS

BACKEND_GROUP = "opdispatch.backends"
PROVIDER_GROUP = "opdispatch.providers"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")
NAME_RULE = "lowercase letters, digits, '_' and '-', starting with a letter, at most 64 characters"
CORE_DIST = "opdispatch"
RESERVED_NAMES = {"numpy": "opdispatch-numpy", "opencl": "opdispatch-opencl", "cupy": "opdispatch-cupy",
                  "reference": CORE_DIST}
"""Backend (and kernel-source) names that only the distribution named here may claim."""
ALIAS_NAMES = {CPU_ALIAS: str(DEFAULT_DEVICE)}
"""Device strings that are aliases (``Device("cpu")`` is ``numpy:0``), with the device each means: no
plugin may take one as its name, nor may a provider's kernel target one."""


class PluginLoadError(Exception):
    """Internal: why one plugin could not be loaded (becomes its 'failed' status)."""


@dataclass
class LoadedBackend:
    """Everything one backend plugin declared, or why it could not be used."""

    name: str
    origin: str
    status: str  # "probing" (loaded, its device probe not run or not answered yet) | "loaded" | "unavailable"
    # | "failed"
    reason: str = ""
    version: str = ""
    description: str = ""
    hidden: bool = False
    devices: list[DeviceInfo] = field(default_factory=list)
    kernels: dict[str, tuple[Kernel, ...]] = field(default_factory=dict)  # per op, kernels of disjoint dtypes
    from_numpy: Optional[Callable[[Any, Any], Any]] = None
    to_numpy: Optional[Callable[[Any, Any], Any]] = None
    array_meta: Optional[Callable[[Any, Any], Any]] = None
    array_types: tuple = ()  # the classes of its arrays (BackendInfo.array_types); () when undeclared
    probe: Optional[Callable[[], Any]] = None  # its opdispatch_devices, run by `probe_backend`


@dataclass
class LoadedProvider:
    """Everything one kernel provider declared, or why it could not be used."""

    name: str
    origin: str
    status: str  # "loaded" | "failed"
    reason: str = ""
    version: str = ""
    description: str = ""
    priority: int = 0
    kernels: list[Kernel] = field(default_factory=list)

    @property
    def targets(self) -> tuple[str, ...]:
        """The backends it provides kernels for."""
        return tuple(sorted({k.backend for k in self.kernels if k.backend}))


def make_manager() -> pluggy.PluginManager:
    """A plugin manager that knows opdispatch's hookspecs."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def entry_points(group: str = BACKEND_GROUP) -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of ``group``, in a stable (name) order."""
    return sorted(importlib.metadata.entry_points(group=group), key=lambda ep: ep.name)


def dist_name(ep: importlib.metadata.EntryPoint) -> Optional[str]:
    """The normalized name (PEP 503) of the distribution that declares ``ep``, or None."""
    dist = getattr(ep, "dist", None)
    return None if dist is None else normalize_dist(dist.name)


def normalize_dist(name: str) -> str:
    """``"opdispatch_numpy"`` -> ``"opdispatch-numpy"`` (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def describe_entry_point(ep: importlib.metadata.EntryPoint) -> str:
    """``"name = module (from dist 1.0)"`` for reports."""
    dist = getattr(ep, "dist", None)
    where = f" (from {dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.name} = {ep.value}{where}"


def error_text(exc: BaseException) -> str:
    """``"ValueError: message"``, one line."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def is_user_interrupt(exc: BaseException) -> bool:
    """Exceptions a plugin must never swallow: the user's Ctrl-C."""
    return isinstance(exc, KeyboardInterrupt)


def check_name(name: Any, what: str) -> str:
    """``name`` when it can name a backend or provider (it prefixes device names), else `PluginLoadError`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise PluginLoadError(f"{what} name {name!r} is not allowed; allowed: {NAME_RULE}")
    if name in ALIAS_NAMES:
        raise PluginLoadError(f"{what} name {name!r} is not allowed: the device string {name!r} is an alias of "
                              f"{ALIAS_NAMES[name]}; allowed: {NAME_RULE}, other than the device aliases "
                              f"{sorted(ALIAS_NAMES)}")
    return name


def _impl(pm: pluggy.PluginManager, plugin: object, hook: str) -> Optional[Callable[..., Any]]:
    """This plugin's implementation of ``hook`` as a keyword-calling function, or None."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            fn, names = impl.function, tuple(impl.argnames)
            return lambda **kw: fn(**{k: kw[k] for k in names})
    return None


def _transfer(call: Callable[..., Any], first: str) -> Callable[[Any, Any], Any]:
    return lambda value, device: call(**{first: value, "device": device})


def check_disjoint(declared: Sequence[Kernel], kernel: Kernel) -> Sequence[Kernel]:
    """``declared`` (the plugin's kernels so far for ``kernel``'s op and backend) when none of them
    computes in one of ``kernel``'s dtypes; else `PluginLoadError`. Several kernels of one op are
    allowed when their dtypes are disjoint (a float16 kernel that computes in float32 beside the
    float32 one, say): the call's dtype picks one."""
    for k in declared:
        shared = sorted(d.name for d in k.dtype_set & kernel.dtype_set)
        if shared:
            where = f" on backend {kernel.backend!r}" if kernel.backend else ""
            raise PluginLoadError(f"declares two kernels for op {kernel.op!r}{where} that both compute in "
                                  f"{', '.join(shared)}; allowed: several kernels of one op only with disjoint dtypes")
    return declared


def check_kernel(kernel: Any, provider: bool = False) -> Kernel:
    """Validate one declared kernel against its op's schema; raise `PluginLoadError` if it does not fit."""
    if not isinstance(kernel, Kernel):
        raise PluginLoadError(f"returned {kernel!r} as a kernel; allowed: opdispatch.backend.Kernel objects")
    schema = OPS.get(kernel.op)
    if schema is None:
        raise PluginLoadError(f"kernel for unknown op {kernel.op!r}; allowed ops: {sorted(OPS)}")
    bad = [d.name for d in kernel.dtype_set if d not in KERNEL_DTYPES]
    if bad or not kernel.dtype_set:
        raise PluginLoadError(f"kernel for {kernel.op!r} declares dtypes {sorted(bad) or '[]'}; allowed: "
                              f"a non-empty subset of {[d.name for d in KERNEL_DTYPES]}")
    if not callable(kernel.fn):
        raise PluginLoadError(f"kernel for {kernel.op!r}: fn {kernel.fn!r} is not callable")
    if kernel.supports is not None and not callable(kernel.supports):
        raise PluginLoadError(f"kernel for {kernel.op!r}: supports {kernel.supports!r} is not callable")
    if provider:
        if kernel.backend is None:
            raise PluginLoadError(f"kernel for {kernel.op!r} names no backend; allowed: Kernel(..., backend='numpy') "
                                  f"naming the backend whose devices it serves")
        check_name(kernel.backend, f"kernel for {kernel.op!r}: backend")
    elif kernel.backend is not None:
        raise PluginLoadError(f"kernel for {kernel.op!r} names backend {kernel.backend!r}; a backend's own kernels "
                              f"leave it None (kernels for other backends come from providers, opdispatch.providers)")
    bad_layouts = [lay for lay in kernel.layouts if lay not in LAYOUTS] if not isinstance(kernel.layouts, str) \
        else [kernel.layouts]
    if bad_layouts:
        raise PluginLoadError(f"kernel for {kernel.op!r} declares layouts {bad_layouts}; allowed: a sequence of "
                              f"{list(LAYOUTS)}")
    inputs = [i.name for i in schema.inputs]
    attrs = list(schema.kernel_attr_names()) + (["layout"] if kernel.layouts else [])
    try:
        inspect.signature(kernel.fn).bind(*([None] * len(inputs)), **dict.fromkeys(attrs))
    except TypeError as exc:
        raise PluginLoadError(
            f"kernel for {kernel.op!r} has signature {getattr(kernel.fn, '__name__', 'fn')}"
            f"{inspect.signature(kernel.fn)}, which does not fit the schema: it must take the inputs "
            f"({', '.join(inputs)}{', ...' if schema.variadic else ''}) positionally"
            + (f" and the attributes ({', '.join(attrs)}) as keywords" if attrs else " and no other required argument")
            + f" ({exc})") from None
    except ValueError:
        pass  # builtins without an introspectable signature: trust them
    return kernel


def _foreign(dev: Any, backend: str) -> Optional[str]:
    """The backend that probe answer ``dev`` names when it is not ``backend`` (an `od.Device`, a device
    string, or an object with a ``backend`` attribute), else None."""
    if isinstance(dev, Device):
        owner: Any = dev.backend
    elif isinstance(dev, str):
        owner = dev.strip().lower().partition(":")[0]
    else:
        owner = getattr(dev, "backend", None)
    return None if owner is None or owner == backend else str(owner)


def _check_devices(devices: Any, backend: str) -> list[DeviceInfo]:
    """The devices probe answer ``devices`` of ``backend`` declares, sorted by index, or `PluginLoadError`
    (any bad entry fails the whole answer: nothing of it is published)."""
    if devices is None:
        raise PluginLoadError("opdispatch_devices returned None; allowed: a list of DeviceInfo (empty is fine)")
    devices = list(devices)
    for dev in devices:
        owner = _foreign(dev, backend)
        if owner is not None:
            raise PluginLoadError(f"opdispatch_devices returned {dev!r}, a device of backend {owner!r}; backend "
                                  f"{backend!r} may publish only its own devices: DeviceInfo(index=N) becomes "
                                  f"{backend}:N (none of its devices is published)")
        if not isinstance(dev, DeviceInfo) or not isinstance(dev.index, int) or dev.index < 0:
            raise PluginLoadError(f"opdispatch_devices returned {dev!r}; allowed: DeviceInfo with an index >= 0")
        bad = [d.name for d in dev.dtype_set if d not in FLOAT_DTYPES]
        if bad:
            raise PluginLoadError(f"device {dev.index} declares dtypes {bad}; allowed: "
                                  f"{[d.name for d in FLOAT_DTYPES]}")
        driver = dev.driver
        if not isinstance(driver, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in driver.items()):
            raise PluginLoadError(f"device {dev.index} declares driver {driver!r}; allowed: a mapping of str to str")
    if len({d.index for d in devices}) != len(devices):
        raise PluginLoadError(f"opdispatch_devices returned duplicate indexes {[d.index for d in devices]}")
    return sorted(devices, key=lambda d: d.index)


def kind_of(plugin: object) -> str:
    """``"provider"`` when ``plugin`` implements `opdispatch_provider_info`, else ``"backend"``."""
    return "provider" if callable(getattr(plugin, "opdispatch_provider_info", None)) else "backend"


def check_api(declared: Any, kind: str, name: str) -> None:
    """`PluginLoadError` unless ``declared`` (a `BackendInfo` or `ProviderInfo`'s ``plugin_api``) is a
    plugin API this release loads (`opdispatch.backend.SUPPORTED_PLUGIN_APIS`)."""
    if not isinstance(declared, int) or isinstance(declared, bool):
        raise PluginLoadError(f"{kind} {name!r} declares plugin_api={declared!r}; allowed: an int, the "
                              f"opdispatch plugin API it was written for (this is plugin API {PLUGIN_API})")
    if declared not in SUPPORTED_PLUGIN_APIS:
        raise PluginLoadError(f"{kind} {name!r} was built for opdispatch plugin API {declared}; this is plugin API "
                              f"{PLUGIN_API} (it loads plugins built for API "
                              f"{', '.join(map(str, SUPPORTED_PLUGIN_APIS))}): install a release of the plugin "
                              f"built for plugin API {PLUGIN_API}, or a release of opdispatch that loads API "
                              f"{declared}")


class _Identity:
    """A plugin's identity hook, called once, before pluggy validates the plugin's hooks: what it
    returned or raised (re-raised when the loading path asks for it, so the failure is reported as
    the plugin's)."""

    def __init__(self, plugin: object, kind: str) -> None:
        self.value: Any = None
        self.error: Optional[BaseException] = None
        hook: Any = getattr(plugin, "opdispatch_provider_info" if kind == "provider" else "opdispatch_backend_info",
                            None)
        self.called = callable(hook)
        if not self.called:
            return
        try:
            self.value = hook()
        except BaseException as exc:  # the plugin's own failure, reported when loading gets there
            if is_user_interrupt(exc):
                raise
            self.error = exc

    def api_problem(self, kind: str, name: str) -> Optional[str]:
        """Why the plugin cannot load because of the plugin API it declares, or None (so a plugin written
        for another API is reported as such, not as the hook or signature mismatch that follows)."""
        info = self.value
        if not isinstance(info, (BackendInfo, ProviderInfo)):
            return None
        try:
            check_api(info.plugin_api, kind, info.name if isinstance(info.name, str) else name)
        except PluginLoadError as exc:
            return str(exc)
        return None

    def get(self, impl: Callable[[], Any]) -> Any:
        """What the hook returned (``impl``'s answer when it could not be called directly)."""
        if not self.called:
            return impl()
        if self.error is not None:
            raise self.error
        return self.value


def register(pm: pluggy.PluginManager, plugin: object, name: str) -> Optional[str]:
    """Register ``plugin`` with ``pm``; None, or why it cannot be: the same object already registered
    (one module behind two entry points), or pluggy's hook validation."""
    if pm.is_registered(plugin):
        other = (pm.get_name(plugin) or "?").rpartition("@")[0] or "?"
        what = f"module {plugin.__name__!r}" if isinstance(plugin, types.ModuleType) else f"object {plugin!r}"
        return (f"{what} is already loaded as the plugin {other!r}: one plugin object backs one backend or "
                f"provider. To ship several from one distribution, give each entry point its own module, or "
                f"its own object: `{name} = \"pkg.plugin:{name.upper().replace('-', '_')}\"` naming an instance "
                f"of a class whose methods are the hooks (marked with @hookimpl)")
    try:
        pm.register(plugin, name=f"{name}@{id(plugin)}")
    except Exception as exc:  # pluggy.PluginValidationError, duplicate registration
        return f"hook validation failed: {error_text(exc)}"
    return None


def _guarded(pm: pluggy.PluginManager, plugin: object, result: Any, collect: Callable[[], None]) -> None:
    """Run ``collect``; any failure becomes ``result``'s status (the user's Ctrl-C propagates)."""
    try:
        collect()
    except PluginLoadError as exc:
        result.status, result.reason = "failed", str(exc)
    except BackendUnavailable as exc:
        result.status, result.reason = "unavailable", str(exc) or "the backend reported itself unavailable"
    except BaseException as exc:  # a plugin's SystemExit is its own failure, not the user's program's
        if is_user_interrupt(exc):
            raise
        result.status, result.reason = "failed", f"error in plugin {result.name!r}: {error_text(exc)}"
    if result.status == "failed":
        pm.unregister(plugin)


def _check_hooks(pm: pluggy.PluginManager, plugin: object, required: tuple[str, ...]) -> dict[str, Callable]:
    unknown = [c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec()]
    if unknown:
        raise PluginLoadError(f"implements unknown hook(s) {unknown}; allowed: {sorted(required)}")
    impls = {hook: _impl(pm, plugin, hook) for hook in required}
    missing = [hook for hook, fn in impls.items() if fn is None]
    if missing:
        raise PluginLoadError(f"does not implement required hook(s) {missing}")
    other = [h for h in hookspecs.BACKEND_HOOKS + hookspecs.PROVIDER_HOOKS
             if h not in required and _impl(pm, plugin, h) is not None]
    if other:
        raise PluginLoadError(f"implements {other} as well as {list(required)}; a plugin is either a backend "
                              f"({list(hookspecs.BACKEND_HOOKS)}) or a kernel provider "
                              f"({list(hookspecs.PROVIDER_HOOKS)})")
    return impls  # type: ignore[return-value]


def module_dists(plugin: object) -> list[str]:
    """The (normalized) distributions that installed the top-level package ``plugin`` is defined in (a
    module, or an object whose class is defined in one)."""
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
    found = importlib.metadata.packages_distributions().get(str(module).split(".")[0], [])
    return sorted({normalize_dist(d) for d in found})


def check_owner(name: str, dist: Optional[str], plugin: object, kind: str) -> None:
    """`PluginLoadError` when ``name`` is reserved for another distribution than the plugin's: ``dist``
    (its entry point's), else the one that installed its module (a plugin registered at run time)."""
    owner = RESERVED_NAMES.get(name)
    if owner is None:
        return
    dists = [dist] if dist else module_dists(plugin)
    if owner not in dists:
        where = (f"the distribution {' / '.join(map(repr, dists))}" if dists else
                 f"no installed distribution (module {getattr(plugin, '__name__', type(plugin).__module__)!r})")
        raise PluginLoadError(f"{kind} name {name!r} belongs to the distribution {owner!r}; this plugin comes from "
                              f"{where} and may not claim it")


def _identify(result: Any, info: Any, expected: "type[BackendInfo] | type[ProviderInfo]", hook: str, kind: str,
              taken: "set[str]", dist: Optional[str], plugin: object) -> None:
    """Check the identity ``info`` a plugin's ``hook`` returned and adopt its name."""
    if not isinstance(info, expected):
        raise PluginLoadError(f"{hook} returned {info!r}; allowed: an opdispatch.backend.{expected.__name__}")
    check_name(info.name, kind)
    check_api(info.plugin_api, kind, info.name)
    if info.name != result.name:
        result.origin = f"{result.origin}; {kind} name {info.name!r}"
        result.name = info.name
    check_owner(info.name, dist, plugin, kind)
    if info.name in taken:
        raise PluginLoadError(f"{kind} name {info.name!r} is already provided by another plugin")


def _array_types(types: Any) -> tuple:
    """``BackendInfo.array_types`` checked: a tuple of classes."""
    if not isinstance(types, (tuple, list)) or not all(isinstance(t, type) for t in types):
        raise PluginLoadError(f"opdispatch_backend_info returned array_types {types!r}; allowed: a tuple of "
                              f"classes (the backend's array types)")
    return tuple(types)


def load_backend(pm: pluggy.PluginManager, plugin: object, name: str, origin: str,
                 taken: "set[str]", dist: Optional[str] = None) -> LoadedBackend:
    """Register a backend ``plugin`` (from distribution ``dist``) and collect its declarations, all but
    its devices: it is left "probing", its probe to run with `probe_backend`. Never raises for a broken
    plugin (the user's Ctrl-C aside)."""
    result = LoadedBackend(name=name, origin=origin, status="failed")
    identity = _Identity(plugin, "backend")
    result.reason = identity.api_problem("backend", name) or register(pm, plugin, name) or ""
    if result.reason:
        return result

    def collect() -> None:
        impls = _check_hooks(pm, plugin, hookspecs.BACKEND_HOOKS)
        info = identity.get(impls["opdispatch_backend_info"])
        _identify(result, info, BackendInfo, "opdispatch_backend_info", "backend", taken, dist, plugin)
        result.version, result.description, result.hidden = info.version, info.description, info.hidden
        result.array_types = _array_types(info.array_types)
        for kernel in impls["opdispatch_kernels"]() or ():
            kernel = check_kernel(kernel)
            result.kernels[kernel.op] = (*check_disjoint(result.kernels.get(kernel.op, ()), kernel), kernel)
        result.from_numpy = _transfer(impls["opdispatch_from_numpy"], "array")
        result.to_numpy = _transfer(impls["opdispatch_to_numpy"], "data")
        meta = _impl(pm, plugin, "opdispatch_array_meta")
        result.array_meta = None if meta is None else _transfer(meta, "data")
        result.probe = impls["opdispatch_devices"]
        result.status = "probing"

    _guarded(pm, plugin, result, collect)
    return result


def probe_backend(backend: LoadedBackend) -> tuple[str, str, list[DeviceInfo]]:
    """Run ``backend``'s device probe and check its answer: ``(status, reason, devices)``, status
    "loaded", "unavailable" or "failed". An answer with a device of another backend (a `Device`
    ``bar:0``, a DeviceInfo subclass whose ``backend`` is not ``backend.name``) fails the backend as a
    whole, like any other bad entry: none of its devices is published. Never raises: it runs in a
    thread of its own, which the user's Ctrl-C never reaches (that interrupts the thread waiting for
    the answer), so whatever the probe raises, a SystemExit or KeyboardInterrupt of its own included,
    is the plugin's failure."""
    try:
        devices = _check_devices(backend.probe() if backend.probe is not None else None, backend.name)
    except PluginLoadError as exc:
        return "failed", str(exc), []
    except BackendUnavailable as exc:
        return "unavailable", str(exc) or "the backend reported itself unavailable", []
    except BaseException as exc:  # noqa: B036 -- a probe thread's own exceptions are the plugin's failure
        return "failed", f"error in plugin {backend.name!r} (device probe): {error_text(exc)}", []
    if not devices:
        return "unavailable", "the backend found no device on this machine", []
    return "loaded", "", devices


def load_provider(pm: pluggy.PluginManager, plugin: object, name: str, origin: str,
                  taken: "set[str]", dist: Optional[str] = None) -> LoadedProvider:
    """Register a kernel-provider ``plugin`` and collect its kernels; never raises for a broken plugin."""
    result = LoadedProvider(name=name, origin=origin, status="failed")
    identity = _Identity(plugin, "provider")
    result.reason = identity.api_problem("provider", name) or register(pm, plugin, name) or ""
    if result.reason:
        return result

    def collect() -> None:
        impls = _check_hooks(pm, plugin, hookspecs.PROVIDER_HOOKS)
        info = identity.get(impls["opdispatch_provider_info"])
        _identify(result, info, ProviderInfo, "opdispatch_provider_info", "provider", taken, dist, plugin)
        if not isinstance(info.priority, int) or isinstance(info.priority, bool) or info.priority <= BUILTIN_PRIORITY:
            raise PluginLoadError(f"priority {info.priority!r} is not allowed; allowed: an int > {BUILTIN_PRIORITY} "
                                  f"(backends' own kernels have {BUILTIN_PRIORITY})")
        result.version, result.description, result.priority = info.version, info.description, info.priority
        for kernel in impls["opdispatch_provider_kernels"]() or ():
            kernel = check_kernel(kernel, provider=True)
            check_disjoint([k for k in result.kernels if (k.backend, k.op) == (kernel.backend, kernel.op)], kernel)
            result.kernels.append(kernel)
        result.status = "loaded"

    _guarded(pm, plugin, result, collect)
    return result
