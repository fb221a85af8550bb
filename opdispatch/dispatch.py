"""Dispatch on backend arrays and metas: choose what runs a call on a device, and run kernels.

For a validated call (its input metas and kernel attributes known), `choose` picks, on the call's
device, the first candidate kernel (providers by priority, the backend's own last) whose dtypes
and ``supports()`` accept it; failing that, the op's decomposition when every op it uses can run
there; failing that, the reason. The choice is cached per call signature (``supports()`` must
depend only on the metas and attributes). `execute` runs the chosen kernel, or one on another
device under a fallback policy. Nothing here knows the eager `Tensor`: the frontends wrap results.
"""

from __future__ import annotations

import contextvars
import dataclasses
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence

import numpy as np

from . import recording
from .device import Device
from .errors import InvalidArgumentError, KernelError, OpDispatchError, UnsupportedError
from .fpstate import quiet, restore
from .ops import OPS
from .placement import DEFAULT_DEVICE, Placement, PlacementEvent, report
from .registry import registry
from .runtime import DeviceRuntime, KernelEntry, KernelTable
from .schema import OpSchema, TensorMeta

CHOICE_CACHE_LIMIT = 4096  # signatures remembered per device before the cache starts over


class Choice(NamedTuple):
    """How a call runs on one device: a kernel (``fn`` from ``provider``), the op's decomposition,
    or neither (``reason`` says why). ``layouts``: the result layouts the kernel can write (`Kernel.layouts`)."""

    fn: Optional[Callable[..., Any]]
    provider: str
    decompose: bool
    reason: Optional[str]
    layouts: frozenset = frozenset()

    @property
    def runnable(self) -> bool:
        return self.reason is None


_PIN: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("opdispatch_pinned_provider", default=None)


def current_pin() -> Optional[str]:
    """The provider `use_provider` pins in this context, or None."""
    return _PIN.get()


class use_provider:  # noqa: N801 - a context manager used like a function
    """Inside the block, every op that provider ``name`` has a kernel for runs with that kernel (or is
    unsupported where its dtypes or ``supports()`` decline), whatever the priorities say; other ops
    are dispatched as usual. For comparing and checking providers (the conformance suite does).
    ``name`` is a loaded provider or backend (a backend's own kernels)."""

    def __init__(self, name: str) -> None:
        known = registry().kernel_sources()
        if name not in known:
            raise InvalidArgumentError(f"use_provider: argument 'name' got {name!r}; allowed: a loaded provider or "
                                       f"backend: {known}")
        self.name = name
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> "use_provider":
        self._tokens.append(_PIN.set(self.name))
        recording.hold_fast_paths()
        return self

    def __exit__(self, *exc: object) -> None:
        _PIN.reset(self._tokens.pop())
        recording.release_fast_paths()


def verdict(entry: KernelEntry, op: str, metas: Sequence[Optional[TensorMeta]], kattrs: dict,
            dtype: np.dtype) -> Optional[str]:
    """None when candidate kernel ``entry`` accepts this call, else why not (its dtypes, its
    ``supports()``). A ``supports()`` that raises is a `KernelError` naming the op and provider."""
    if dtype not in entry.kernel.dtype_set:
        return f"the {op} kernel of {entry.provider!r} supports " \
               f"{', '.join(sorted(d.name for d in entry.kernel.dtype_set))}, not {dtype.name}"
    if entry.kernel.supports is None:
        return None
    try:
        reason = entry.kernel.supports(metas, kattrs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise KernelError(f"{op}: supports() of the {op} kernel of {entry.provider!r} raised "
                          f"{type(exc).__name__}: {exc}") from exc
    return str(reason) if reason else None


def has_kernel_for(table: KernelTable, op: str, dtype: np.dtype) -> bool:
    """Whether some candidate kernel of ``op`` in ``table`` handles ``dtype`` (its supports() aside)."""
    return any(dtype in e.kernel.dtype_set for e in table.candidates.get(op, ()))


def _dtype_reason(rt: DeviceRuntime, dtype: np.dtype) -> Optional[str]:
    """Why ``rt`` cannot compute in ``dtype``: a device declares its float dtypes; integer and bool
    data every device stores, and its kernels declare which of them they handle."""
    if dtype in rt.info.dtype_set or dtype.kind in "iub":
        return None
    return f"device {rt.device} does not support {dtype.name} (it supports " \
           f"{', '.join(sorted(d.name for d in rt.info.dtype_set))})"


def decomposable(rt: DeviceRuntime, op: str, dtype: np.dtype, seen: tuple = (),
                 table: Optional[KernelTable] = None) -> Optional[str]:
    """None when ``rt`` can run op ``op``'s decomposition in ``dtype`` as far as op and dtype tell (each
    op it uses has a kernel for the dtype there, or is decomposable itself), else what is missing.
    The kernels' ``supports()`` are asked only when the decomposition runs (`opdispatch.explain`
    asks them for a given call)."""
    table = table if table is not None else rt.table
    dec = OPS[op].decomposition
    if dec is None:
        return f"{op} has no decomposition"
    missing = []
    for used in dec.uses:
        if has_kernel_for(table, used, dtype):
            continue
        if used in seen or OPS[used].decomposition is None or decomposable(rt, used, dtype, seen + (op,), table):
            missing.append(used)
    return None if not missing else f"its decomposition needs {', '.join(missing)}, which {rt.device} cannot run"


def _for_dtype(entries: tuple[KernelEntry, ...], dtype: np.dtype) -> tuple[KernelEntry, ...]:
    """The candidates that compute in ``dtype``. When none does: one per source (a backend or provider
    may declare several kernels of an op, for disjoint dtypes), standing for all of that source's
    dtypes, so that the reason names each source once with everything it supports."""
    fits = tuple(e for e in entries if dtype in e.kernel.dtype_set)
    if fits or len(entries) <= 1:
        return fits or entries
    merged: dict[str, KernelEntry] = {}
    for e in entries:
        first = merged.get(e.provider)
        merged[e.provider] = e if first is None else first._replace(
            kernel=dataclasses.replace(first.kernel, dtypes=tuple(first.kernel.dtype_set | e.kernel.dtype_set)))
    return tuple(merged.values())


def _decide(rt: DeviceRuntime, table: KernelTable, schema: OpSchema, metas: Sequence[Optional[TensorMeta]],
            kattrs: dict, dtype: np.dtype, pin: Optional[str]) -> Choice:
    op = schema.name
    dtype = schema.compute_dtype(metas, dtype)
    reason = _dtype_reason(rt, dtype)
    if reason is not None:
        return Choice(None, "", False, reason)
    entries = table.candidates.get(op, ())
    pinned = pin is not None and any(e.provider == pin for e in entries)
    if pinned:
        entries = tuple(e for e in entries if e.provider == pin)
    entries = _for_dtype(entries, dtype)
    reasons = []
    for e in entries:
        declined = verdict(e, op, metas, kattrs, dtype)
        if declined is None:
            return Choice(e.kernel.fn, e.provider, False, None, frozenset(e.kernel.layouts))
        reasons.append(declined if len(entries) == 1 or declined.startswith(f"the {op} kernel of")
                       else f"{e.provider}: {declined}")
    if not reasons:
        reasons.append(f"backend {rt.backend!r} has no kernel for {op}")
    if schema.decomposition is not None and not pinned:
        missing = decomposable(rt, op, dtype, table=table)
        if missing is None:
            return Choice(None, "", True, None)
        reasons.append(missing)
    return Choice(None, "", False, "; ".join(reasons))


def choose(rt: DeviceRuntime, schema: OpSchema, metas: Sequence[Optional[TensorMeta]], kattrs: dict,
           dtype: np.dtype) -> Choice:
    """What runs this call on ``rt`` (cached per op, input metas, attributes and pinned provider, in the
    device's current kernel table). Kernels are chosen for the call's compute dtype
    (`OpSchema.compute_dtype`: its first float or value input's dtype), ``dtype`` (the first output's)
    where it has no such input; the dtype is a function of the metas, so the cache key holds it."""
    pin = _PIN.get()
    table = rt.table  # one snapshot: the decision and where it is cached always agree
    try:
        key: Any = (schema.name, tuple(metas), tuple(kattrs.items()), pin)
        hit = table.choices.get(key)
    except TypeError:  # an unhashable attribute value: decide without the cache
        return _decide(rt, table, schema, metas, kattrs, dtype, pin)
    if hit is None:
        hit = _decide(rt, table, schema, metas, kattrs, dtype, pin)
        if len(table.choices) >= CHOICE_CACHE_LIMIT:
            table.choices.clear()
        table.choices[key] = hit
    return hit


def why_unsupported(rt: DeviceRuntime, schema: OpSchema, metas: Sequence[Optional[TensorMeta]],
                    kattrs: dict, dtype: np.dtype) -> Optional[str]:
    """None when ``rt`` can run this call (a kernel or the op's decomposition), else the reason in words."""
    return choose(rt, schema, metas, kattrs, dtype).reason


def fallback_runtime(rt: DeviceRuntime, schema: OpSchema, metas: Sequence[Optional[TensorMeta]], kattrs: dict,
                     dtype: np.dtype) -> Optional[tuple[DeviceRuntime, Choice]]:
    """Another (listed) device with a kernel for this call, the default CPU device first (eager and
    graph placement alike): only when that cannot run it are the other backends' probes waited for."""
    reg = registry()

    def candidates() -> Iterator[Device]:
        if reg.has_device(DEFAULT_DEVICE):
            yield DEFAULT_DEVICE
        yield from sorted((d for d in reg.devices() if d != DEFAULT_DEVICE), key=lambda d: (d.backend, d.index))

    for dev in candidates():
        other = reg.runtime(dev)
        if other is not rt:
            choice = choose(other, schema, metas, kattrs, dtype)
            if choice.fn is not None:
                return other, choice
    return None


def kernel_error(op: str, rt: DeviceRuntime, exc: BaseException, provider: str = "") -> BaseException:
    """What to raise when the kernel of ``op`` on ``rt`` raised ``exc``: opdispatch's own errors and
    `KeyboardInterrupt` as they are, anything else (``SystemExit`` from a plugin too) as a `KernelError`
    naming the op, provider and device, ``exc`` as its cause. Raise it as it is (no ``from``)."""
    if isinstance(exc, (OpDispatchError, KeyboardInterrupt)):
        return exc
    err = KernelError(f"{op}: the kernel of {_who(rt, provider)} on {rt.device} raised {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def check_values(schema: OpSchema, rt: DeviceRuntime, datas: Sequence[Any], metas: Sequence[Optional[TensorMeta]],
                 kattrs: dict) -> None:
    """Run ``schema.check_values``: integer inputs (class labels) are copied to the host, float
    inputs are passed as their `TensorMeta` (their values stay on the device)."""
    schema.check_values([None if d is None else rt.to_numpy(d, rt.device) if spec.kind == "int" else m  # type: ignore[misc]
                         for spec, d, m in zip(schema.input_specs(len(datas)), datas, metas)], kattrs)


def run_kernel(rt: DeviceRuntime, schema: OpSchema, choice: Choice, datas: Sequence[Any], kattrs: dict) -> Any:
    """Call the chosen kernel (NumPy's floating-point errors off: IEEE results, no warnings); a
    non-opdispatch exception becomes a `KernelError`."""
    token = quiet()
    try:
        return choice.fn(*datas, **kattrs)  # type: ignore[misc]
    except BaseException as exc:
        raise kernel_error(schema.name, rt, exc, choice.provider)  # noqa: B904 - it sets the cause
    finally:
        restore(token)


def _who(rt: DeviceRuntime, provider: str) -> str:
    who = provider or rt.backend
    return f"{'backend' if who == rt.backend else 'provider'} {who!r}"


def check_results(op: str, rt: DeviceRuntime, provider: str, result: Any, outs: Sequence[TensorMeta]) -> tuple:
    """The kernel result of ``op`` as one backend array per output, each checked against the shape and
    dtype inference promised; a `KernelError` naming the op, the provider and the device otherwise.
    A plain array of the promised shape and dtype costs two comparisons; anything else is described
    by the backend (`DeviceRuntime.describe`) before it is accepted or refused."""
    if len(outs) == 1:
        results: tuple = (result,)
    elif type(result) is tuple and len(result) == len(outs):
        results = result
    else:
        got = f"a tuple of {len(result)} arrays" if type(result) is tuple else type(result).__name__
        raise KernelError(f"{op}: the kernel of {_who(rt, provider)} on {rt.device} returned {got}; allowed: a "
                          f"tuple of {len(outs)} {rt.backend} arrays, one per output")
    plain, types = rt.plain_arrays, rt.result_types
    for i, (r, m) in enumerate(zip(results, outs)):
        if plain and isinstance(r, types):
            try:
                if r.shape == m.shape and r.dtype == m.dtype:
                    continue
            except Exception:  # noqa: S110 - not plainly an array: described below
                pass
        _check_result(op, rt, provider, r, m, f"output {i}" if len(outs) > 1 else "its output")
    return results


def _check_result(op: str, rt: DeviceRuntime, provider: str, r: Any, m: TensorMeta, label: str) -> None:
    got = rt.describe(r)
    if got is None:
        raise KernelError(f"{op}: the kernel of {_who(rt, provider)} on {rt.device} returned "
                          f"{type(r).__name__} as {label}; allowed: a {rt.backend} array of shape {m.shape} "
                          f"and dtype {m.dtype.name}")
    if got != (tuple(m.shape), m.dtype):
        raise KernelError(f"{op}: the kernel of {_who(rt, provider)} on {rt.device} returned {label} of shape "
                          f"{got[0]} and dtype {got[1].name}; the schema inferred shape {tuple(m.shape)} and "
                          f"dtype {m.dtype.name}")


def unsupported(schema: OpSchema, rt: DeviceRuntime, reason: str, placement: Placement) -> UnsupportedError:
    """The error for a call that cannot run on ``rt`` (with the hint or the fallback's failure)."""
    if placement.fallback == "error":
        return UnsupportedError(f"{schema.name}: cannot run on {rt.device}: {reason}; to run it elsewhere, allow a "
                                f"fallback: with od.device(None, fallback='warn')")
    return UnsupportedError(f"{schema.name}: cannot run on {rt.device}: {reason} and no other device can run it")


def execute(schema: OpSchema, choice: Choice, rt: DeviceRuntime, datas: list[Any],
            metas: list[Optional[TensorMeta]], outs: list[TensorMeta], kattrs: dict,
            placement: Placement) -> tuple[DeviceRuntime, tuple]:
    """Run an inferred call on ``rt`` with its kernel ``choice`` (or, when it has none and the policy
    allows, on a fallback device); return the runtime that holds the results and the backend arrays,
    one per output."""
    home = rt
    if choice.fn is None:
        reason = choice.reason or "no kernel"
        found = None if placement.fallback == "error" else fallback_runtime(rt, schema, metas, kattrs, outs[0].dtype)
        if found is None:
            raise unsupported(schema, rt, reason, placement)
        other, choice = found
        report(placement, PlacementEvent(schema.name, rt.device, other.device, reason))
        datas = [None if d is None else other.from_numpy(rt.to_numpy(d, rt.device), other.device) for d in datas]
        rt = other
    if schema.check_values is not None:
        check_values(schema, rt, datas, metas, kattrs)
    result = run_kernel(rt, schema, choice, datas, kattrs)
    results = check_results(schema.name, rt, choice.provider, result, outs)
    if rt is not home:
        results = tuple(home.from_numpy(rt.to_numpy(r, rt.device), home.device) for r in results)
    return home, results
