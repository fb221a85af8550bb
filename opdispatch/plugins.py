"""Finding backend plugins and loading each one in isolation.

Entry points in the group ``opdispatch.backends`` are iterated one by one (pluggy's own
``load_setuptools_entrypoints`` stops at the first plugin that fails to import). Every step of
loading a plugin -- import, hook validation, the backend's declarations, the device probe --
is guarded, so a broken plugin is reported by name with the reason and the rest keep working.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pluggy

from . import hookspecs
from .backend import BackendInfo, BackendUnavailable, DeviceInfo, Kernel
from .dtypes import FLOAT_DTYPES
from .ops import OPS

ENTRY_POINT_GROUP = "opdispatch.backends"
REQUIRED_HOOKS = ("opdispatch_backend_info", "opdispatch_devices", "opdispatch_kernels",
                  "opdispatch_from_numpy", "opdispatch_to_numpy")


class PluginLoadError(Exception):
    """Internal: why one plugin could not be loaded (becomes its 'failed' status)."""


@dataclass
class LoadedBackend:
    """Everything one plugin declared, or why it could not be used."""

    name: str
    origin: str
    status: str  # "loaded" | "unavailable" | "failed"
    reason: str = ""
    version: str = ""
    description: str = ""
    devices: list[DeviceInfo] = field(default_factory=list)
    kernels: dict[str, Kernel] = field(default_factory=dict)
    from_numpy: Optional[Callable[[Any, Any], Any]] = None
    to_numpy: Optional[Callable[[Any, Any], Any]] = None


def make_manager() -> pluggy.PluginManager:
    """A plugin manager that knows opdispatch's hookspecs."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of the backend group, in a stable (name) order."""
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def describe_entry_point(ep: importlib.metadata.EntryPoint) -> str:
    """``"name = module (from dist 1.0)"`` for reports."""
    dist = getattr(ep, "dist", None)
    where = f" (from {dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.name} = {ep.value}{where}"


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _impl(pm: pluggy.PluginManager, plugin: object, hook: str) -> Optional[Callable[..., Any]]:
    """This plugin's implementation of ``hook`` as a keyword-calling function, or None."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            fn, names = impl.function, tuple(impl.argnames)
            return lambda **kw: fn(**{k: kw[k] for k in names})
    return None


def _transfer(call: Callable[..., Any], first: str) -> Callable[[Any, Any], Any]:
    return lambda value, device: call(**{first: value, "device": device})


def check_kernel(kernel: Any) -> Kernel:
    """Validate one declared kernel against its op's schema; raise `PluginLoadError` if it does not fit."""
    if not isinstance(kernel, Kernel):
        raise PluginLoadError(f"opdispatch_kernels returned {kernel!r}; allowed: opdispatch.backend.Kernel objects")
    schema = OPS.get(kernel.op)
    if schema is None:
        raise PluginLoadError(f"kernel for unknown op {kernel.op!r}; allowed ops: {sorted(OPS)}")
    bad = [d.name for d in kernel.dtype_set if d not in FLOAT_DTYPES]
    if bad or not kernel.dtype_set:
        raise PluginLoadError(f"kernel for {kernel.op!r} declares dtypes {sorted(bad) or '[]'}; allowed: "
                              f"a non-empty subset of {[d.name for d in FLOAT_DTYPES]}")
    if not callable(kernel.fn):
        raise PluginLoadError(f"kernel for {kernel.op!r}: fn {kernel.fn!r} is not callable")
    inputs = [i.name for i in schema.inputs]
    attrs = list(schema.kernel_attr_names())
    try:
        inspect.signature(kernel.fn).bind(*([None] * len(inputs)), **{a: None for a in attrs})
    except TypeError as exc:
        raise PluginLoadError(
            f"kernel for {kernel.op!r} has signature {kernel.fn.__name__}{inspect.signature(kernel.fn)}, which does "
            f"not fit the schema: it must take the inputs ({', '.join(inputs)}) positionally"
            + (f" and the attributes ({', '.join(attrs)}) as keywords" if attrs else " and no other required argument")
            + f" ({exc})") from None
    except ValueError:
        pass  # builtins without an introspectable signature: trust them
    return kernel


def _check_devices(devices: Any) -> list[DeviceInfo]:
    if devices is None:
        raise PluginLoadError("opdispatch_devices returned None; allowed: a list of DeviceInfo (empty is fine)")
    devices = list(devices)
    for dev in devices:
        if not isinstance(dev, DeviceInfo) or not isinstance(dev.index, int) or dev.index < 0:
            raise PluginLoadError(f"opdispatch_devices returned {dev!r}; allowed: DeviceInfo with an index >= 0")
        bad = [d.name for d in dev.dtype_set if d not in FLOAT_DTYPES]
        if bad:
            raise PluginLoadError(f"device {dev.index} declares dtypes {bad}; allowed: "
                                  f"{[d.name for d in FLOAT_DTYPES]}")
    if len({d.index for d in devices}) != len(devices):
        raise PluginLoadError(f"opdispatch_devices returned duplicate indexes {[d.index for d in devices]}")
    return sorted(devices, key=lambda d: d.index)


def load_backend(pm: pluggy.PluginManager, plugin: object, name: str, origin: str,
                 taken: "set[str]") -> LoadedBackend:
    """Register ``plugin`` and collect its declarations; never raises for a broken plugin."""
    result = LoadedBackend(name=name, origin=origin, status="failed")
    try:
        pm.register(plugin, name=f"{name}@{id(plugin)}")
    except Exception as exc:  # pluggy.PluginValidationError, duplicate registration
        result.reason = f"hook validation failed: {_error_text(exc)}"
        return result
    try:
        _collect(pm, plugin, result, taken)
    except PluginLoadError as exc:
        result.status, result.reason = "failed", str(exc)
    except BackendUnavailable as exc:
        result.status, result.reason = "unavailable", str(exc) or "the backend reported itself unavailable"
    except Exception as exc:
        result.status, result.reason = "failed", f"error in plugin {name!r}: {_error_text(exc)}"
    if result.status == "failed":
        pm.unregister(plugin)
    return result


def _collect(pm: pluggy.PluginManager, plugin: object, result: LoadedBackend, taken: "set[str]") -> None:
    unknown = [c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec()]
    if unknown:
        raise PluginLoadError(f"implements unknown hook(s) {unknown}; allowed: {sorted(REQUIRED_HOOKS)}")
    impls = {hook: _impl(pm, plugin, hook) for hook in REQUIRED_HOOKS}
    missing = [hook for hook, fn in impls.items() if fn is None]
    if missing:
        raise PluginLoadError(f"does not implement required hook(s) {missing}")
    info = impls["opdispatch_backend_info"]()
    if not isinstance(info, BackendInfo):
        raise PluginLoadError(f"opdispatch_backend_info returned {info!r}; allowed: an opdispatch.backend.BackendInfo")
    result.version, result.description = info.version, info.description
    if info.name != result.name:
        result.origin = f"{result.origin}; backend name {info.name!r}"
        result.name = info.name
    if info.name in taken:
        raise PluginLoadError(f"backend name {info.name!r} is already provided by another plugin")
    for kernel in impls["opdispatch_kernels"]() or ():
        kernel = check_kernel(kernel)
        if kernel.op in result.kernels:
            raise PluginLoadError(f"declares two kernels for op {kernel.op!r}")
        result.kernels[kernel.op] = kernel
    result.from_numpy = _transfer(impls["opdispatch_from_numpy"], "array")
    result.to_numpy = _transfer(impls["opdispatch_to_numpy"], "data")
    result.devices = _check_devices(impls["opdispatch_devices"]())
    if result.devices:
        result.status = "loaded"
    else:
        result.status, result.reason = "unavailable", "the backend found no device on this machine"
