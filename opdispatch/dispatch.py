"""Eager dispatch: place a call, infer its outputs, pick the kernel, run it, wrap the results.

Order of work for every call: normalise attributes, gather inputs on one device, infer shapes
and dtypes with the op's schema (so a bad call fails before any kernel runs and changes
nothing), select the kernel from the device's table, run it. The element-wise fast paths in
`opdispatch.api` skip straight to the kernel when the inputs are plain same-device tensors.
"""

from __future__ import annotations

import numbers
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import recording
from .device import Device, Placement, current_placement
from .errors import (DeviceMismatchError, InvalidArgumentError, KernelError, OpDispatchError,
                     PlacementWarning, UnsupportedError)
from .registry import DeviceRuntime, registry
from .schema import OpSchema, TensorMeta
from .tensor import Tensor, host_array, make


@dataclass(frozen=True)
class PlacementEvent:
    """One visible placement decision taken under a fallback policy."""

    op: str
    requested: Device
    ran_on: Device
    reason: str

    def __str__(self) -> str:
        return f"{self.op}: asked for {self.requested}, ran on {self.ran_on} ({self.reason})"


_LOG: deque = deque(maxlen=10_000)


def placement_log() -> list[PlacementEvent]:
    """Placement decisions taken under ``fallback='warn'`` or ``'record'`` (oldest first)."""
    return list(_LOG)


def clear_placement_log() -> None:
    """Forget the recorded placement decisions."""
    _LOG.clear()


def _report(placement: Placement, event: PlacementEvent) -> None:
    _LOG.append(event)
    if placement.fallback == "warn":
        warnings.warn(str(event), PlacementWarning, stacklevel=4)


def _is_weak_scalar(value: Any) -> bool:
    return isinstance(value, (numbers.Number, bool)) and not isinstance(value, np.generic)


def gather(schema: OpSchema, args: Sequence[Any], placement: Placement
           ) -> tuple[DeviceRuntime, list[Optional[Tensor]], list[Optional[TensorMeta]]]:
    """Bring every input onto one device: return its runtime, the input tensors and their metas."""
    op = schema.name
    tensors = [(spec.name, a) for spec, a in zip(schema.inputs, args) if isinstance(a, Tensor)]
    if not tensors:
        rt = registry().runtime(placement.device)
    else:
        rt = tensors[0][1]._rt
        for name, t in tensors[1:]:
            if t._rt.device != rt.device:
                rt = _resolve_mismatch(op, tensors, placement)
                break
    float_dtype = next((t._dtype for _, t in tensors if t._dtype.kind == "f"), None)
    if float_dtype is None:  # like NumPy: Python scalars take the dtype of a float array input
        float_dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
    inputs: list[Optional[Tensor]] = []
    metas: list[Optional[TensorMeta]] = []
    for spec, value in zip(schema.inputs, args):
        if value is None:
            if not spec.optional:
                raise InvalidArgumentError(f"{op}: argument {spec.name!r} got None; allowed: a tensor or array-like")
            inputs.append(None)
            metas.append(None)
            continue
        if not isinstance(value, Tensor):
            dtype = (float_dtype if spec.kind == "float" else np.dtype("int64")) if _is_weak_scalar(value) else None
            arr = host_array(value, dtype, op, spec.name)
            value = make(rt.from_numpy(arr, rt.device), arr.shape, arr.dtype, rt)
        elif value._rt is not rt:
            value = value.to(rt.device) if value._rt.device != rt.device else value
        inputs.append(value)
        metas.append(TensorMeta(value._shape, value._dtype))
    return rt, inputs, metas


def _resolve_mismatch(op: str, tensors: list, placement: Placement) -> DeviceRuntime:
    devices = {}
    for name, t in tensors:
        devices.setdefault(t._rt.device, name)
    if placement.fallback == "error":
        listing = ", ".join(f"{name!r} on {dev}" for dev, name in devices.items())
        raise DeviceMismatchError(f"{op}: inputs live on different devices ({listing}); allowed: every input on "
                                  f"one device -- move one with .to(device), or allow copies with "
                                  f"od.device(None, fallback='warn')")
    target = placement.device if placement.device in devices else tensors[0][1]._rt.device
    moved = [f"{name!r} from {dev}" for dev, name in devices.items() if dev != target]
    _report(placement, PlacementEvent(op, target, target, f"copied {', '.join(moved)} to {target}"))
    return registry().runtime(target)


def why_unsupported(rt: DeviceRuntime, schema: OpSchema, metas: Sequence[Optional[TensorMeta]],
                    kattrs: dict, dtype: np.dtype) -> Optional[str]:
    """None when ``rt`` can run this call, else the missing capability in words."""
    kernel = rt.kernels.get(schema.name)
    if kernel is None:
        return f"backend {rt.backend!r} has no kernel for {schema.name}"
    if dtype not in rt.info.dtype_set:
        return f"device {rt.device} does not support {dtype.name} (it supports " \
               f"{', '.join(sorted(d.name for d in rt.info.dtype_set))})"
    if dtype not in kernel.dtype_set:
        return f"the {schema.name} kernel of {rt.backend!r} supports " \
               f"{', '.join(sorted(d.name for d in kernel.dtype_set))}, not {dtype.name}"
    if kernel.supports is not None:
        reason = kernel.supports(metas, kattrs)
        if reason:
            return str(reason)
    return None


def _fallback_runtime(rt: DeviceRuntime, schema: OpSchema, metas, kattrs, dtype) -> Optional[DeviceRuntime]:
    reg = registry()
    candidates = sorted(reg.devices(), key=lambda d: (d != Device("cpu"), d.backend, d.index))
    for dev in candidates:
        other = reg.runtime(dev)
        if other is not rt and why_unsupported(other, schema, metas, kattrs, dtype) is None:
            return other
    return None


def kernel_error(op: str, rt: DeviceRuntime, exc: Exception) -> Exception:
    """What to raise when the kernel of ``op`` on ``rt`` raised ``exc``: opdispatch's own errors as
    they are, anything else as a `KernelError` naming the op, backend and device (``exc`` chained)."""
    if isinstance(exc, OpDispatchError):
        return exc
    err = KernelError(f"{op}: the kernel of backend {rt.backend!r} on {rt.device} raised {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def check_values(schema: OpSchema, rt: DeviceRuntime, datas: Sequence[Any], metas: Sequence[Optional[TensorMeta]],
                 kattrs: dict) -> None:
    """Run ``schema.check_values``: integer inputs (class labels) are copied to the host, float
    inputs are passed as their `TensorMeta` (their values stay on the device)."""
    schema.check_values([None if d is None else rt.to_numpy(d, rt.device) if spec.kind == "int" else m  # type: ignore[misc]
                         for spec, d, m in zip(schema.inputs, datas, metas)], kattrs)


def run_kernel(rt: DeviceRuntime, schema: OpSchema, datas: Sequence[Any], kattrs: dict) -> Any:
    """Call the kernel of ``rt`` for ``schema``; a non-opdispatch exception becomes a `KernelError`."""
    try:
        return rt.kernels[schema.name].fn(*datas, **kattrs)
    except Exception as exc:
        raise kernel_error(schema.name, rt, exc) from exc


def execute(schema: OpSchema, rt: DeviceRuntime, datas: list[Any], metas: list[Optional[TensorMeta]],
            outs: list[TensorMeta], kattrs: dict, placement: Placement) -> tuple[DeviceRuntime, tuple]:
    """Run an inferred call on ``rt`` (or on a fallback device, when the policy allows); return the
    runtime that holds the results and the backend arrays, one per output."""
    dtype = outs[0].dtype
    reason = why_unsupported(rt, schema, metas, kattrs, dtype)
    home = rt
    if reason is not None:
        other = None if placement.fallback == "error" else _fallback_runtime(rt, schema, metas, kattrs, dtype)
        if other is None:
            hint = "" if placement.fallback != "error" else \
                "; to run it elsewhere, allow a fallback: with od.device(None, fallback='warn')"
            found = " and no other device can run it" if placement.fallback != "error" else ""
            raise UnsupportedError(f"{schema.name}: cannot run on {rt.device}: {reason}{found}{hint}")
        _report(placement, PlacementEvent(schema.name, rt.device, other.device, reason))
        datas = [None if d is None else other.from_numpy(rt.to_numpy(d, rt.device), other.device) for d in datas]
        rt = other
    if schema.check_values is not None:
        check_values(schema, rt, datas, metas, kattrs)
    result = run_kernel(rt, schema, datas, kattrs)
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(outs):
        raise KernelError(f"{schema.name}: the kernel of backend {rt.backend!r} on {rt.device} returned "
                          f"{len(results)} output(s); the schema expects {len(outs)}")
    if rt is not home:
        results = tuple(home.from_numpy(rt.to_numpy(r, rt.device), home.device) for r in results)
    return home, results


def run(schema: OpSchema, args: Sequence[Any], attrs: dict) -> Any:
    """Run op ``schema`` eagerly on ``args`` (tensors, array-likes or None) with user ``attrs``.

    Returns a `Tensor`, or a tuple of them for ops with several outputs.
    """
    placement = current_placement()
    nattrs = schema.normalize(attrs) if schema.attrs else attrs
    rt, inputs, metas = gather(schema, args, placement)
    outs, kattrs = schema.infer(schema.name, metas, nattrs)
    recorders = recording.active()
    tracer = next((r for r in recorders if getattr(r, "symbolic", False)), None) if recorders else None
    if tracer is not None:  # a graph tracer: symbolic outputs, no kernel runs
        tensors = tracer.outputs(schema, rt, inputs, kattrs, outs, placement)
    else:
        datas = [None if t is None else t._data for t in inputs]
        rt, results = execute(schema, rt, datas, metas, outs, kattrs, placement)
        tensors = tuple(make(r, m.shape, m.dtype, rt) for r, m in zip(results, outs))
    for recorder in recorders:
        recorder.record(schema, inputs, kattrs, tensors)
    return tensors[0] if len(tensors) == 1 else tensors

