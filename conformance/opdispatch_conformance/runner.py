"""Run conformance cases on one device and record, per case, what happened and how accurate it was.

Each case runs through the public API on the device under test, with the default placement
policy (no fallback), so what is measured is the device's own kernel. A combination the backend
declares unsupported is recorded as such with its reason; a kernel that raises, returns the
wrong shape, dtype or device, or a result outside the derived tolerance is a failure, and the
run goes on with the next case.

Besides the values, every call is checked for side effects (tensors are immutable):

* its inputs: each input tensor is read back (``.numpy()``) before and after the call, and the
  host arrays handed to ``od.tensor`` are compared with copies taken before; any change fails the
  case, naming the input (a kernel that writes into its input);
* its outputs, later: `History` keeps each case's outputs (as tensors, with the values read back)
  per (device, op, dtype) and reads them again after the next call of that op, and after the next
  call whose output has the same shape; a change fails that later case, naming both (a kernel
  that returns a buffer it reuses, or aliases its outputs across calls);
* a case whose `Case.layout` is not contiguous hands NumPy views (strided, negative-stride,
  column-major) to ``od.tensor``; its results must match the reference and the results of the
  same inputs passed contiguous.
"""

from __future__ import annotations

import shlex
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence

import numpy as np

import opdispatch as od
from opdispatch import Device, Tensor, TensorMeta, op_function
from opdispatch import device as device_scope
from opdispatch.ops import OPS, OpSchema

from .cases import Case, applies
from .tolerance import Tolerance, Worst, compare, derive

PASSED, FAILED, UNSUPPORTED = "passed", "failed", "unsupported"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case on one device in one dtype (no timestamps: reports diff cleanly)."""

    op: str
    case: str
    source: str
    dtype: str
    status: str
    provider: str = ""  # whose kernel ran: a provider or backend name, "decomposed", or "" (unsupported)
    pinned: str = ""  # the provider this run was pinned to (od.use_provider), when several compete
    max_abs: Optional[float] = None
    max_rel: Optional[float] = None
    worst_ratio: Optional[float] = None  # max |err| / bound, over outputs and elements
    rtol: Optional[float] = None
    atol: Optional[float] = None
    reduction_length: Optional[int] = None
    message: str = ""
    traceback: str = ""
    repro: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def reproduction(case: Case, device: Device, dtype: str, mode: str = "eager") -> str:
    """A one-line shell command that reruns exactly this case."""
    head = f"opdispatch conformance --device {device} --dtypes {dtype} --mode {mode}"
    literal = any(i is not None and i.kind == "array" for i in case.inputs)
    if case.source.startswith("onnx:") or literal:  # literal data has no one-line form: select the case by name
        return f"{head} --ops {case.op} --only {shlex.quote(case.name)}"
    return f"{head} --case {shlex.quote(case.to_json())}"


def sequence_reproduction(cases: Sequence[Case], device: Device, dtype: str, mode: str = "eager") -> str:
    """A one-line shell command that reruns ``cases`` one after the other, in the suite's order
    (selected by name; with the ``--seed`` and ``--random`` their random cases need), in ``dtype``
    (one dtype, or several comma-separated)."""
    head = f"opdispatch conformance --device {device} --dtypes {dtype} --mode {mode}"
    ops = ",".join(sorted({c.op for c in cases}))
    extra = ""
    randoms = [c for c in cases if c.source == "random"]
    if randoms:
        seed, count = randoms[0].seed // 100_000, max(c.seed % 100_000 for c in randoms) + 1
        extra += f" --seed {seed}" if seed else ""
        extra += f" --random {count}" if count > 10 else ""
    if not any(c.source.startswith("onnx:") for c in cases):
        extra += " --no-onnx"
    return f"{head} --ops {ops}{extra} " + " ".join(f"--only {shlex.quote(c.name)}" for c in cases)


def _call(case: Case, inputs: list, dev: Device) -> Any:
    fn: Callable[..., Any] = op_function(case.op)
    return fn(*as_args(OPS[case.op], inputs), **case.attrs)


def _call_graph(case: Case, inputs: list, dev: Device, passes: Optional[dict] = None) -> Any:
    """The case through ``od.function`` (with ``passes``): present inputs are traced arguments,
    attributes static."""
    fn: Callable[..., Any] = op_function(case.op)
    present = [i for i, t in enumerate(inputs) if t is not None]

    def traced(*tensors: Any) -> Any:
        args = list(inputs)
        for i, t in zip(present, tensors):
            args[i] = t
        return fn(*as_args(OPS[case.op], args), **case.attrs)

    return od.function(traced, passes=passes)(*[inputs[i] for i in present])


def _call_graph_all_layouts(case: Case, inputs: list, dev: Device) -> Any:
    """The case through ``od.function`` with every kernel that can write a channels-last result asked to
    (``passes={"layout": "all"}``: the graph's output too)."""
    return _call_graph(case, inputs, dev, passes={"layout": "all"})


CALLS: dict[str, Callable[[Case, list, Device], Any]] = {"eager": _call, "graph": _call_graph}
"""How a mode runs a case: ``call(case, input_tensors, device)`` (None for an absent input) -> the result."""


class Prepared(NamedTuple):
    """A case's inputs for one dtype, inferred outputs and kernel attributes, whose kernel runs it on
    the device (a provider's name, or "decomposed") and why the device cannot run it."""

    schema: OpSchema
    arrays: list
    metas: list
    outs: list
    kattrs: dict
    provider: str
    unsupported: Optional[str]
    layouts: tuple[str, ...] = ()


def prepare(case: Case, dev: Device, dtype: str) -> Prepared:
    """Build the inputs of ``case`` in ``dtype`` and ask ``dev`` (`od.explain`) how it runs the call.
    A ``supports()`` that raises is reported as the reason (the case then fails, it is not skipped)."""
    schema = OPS[case.op]
    arrays = case.make_inputs(dtype)
    metas = [None if a is None else TensorMeta(a.shape, a.dtype) for a in arrays]
    outs, kattrs = schema.infer(schema.name, metas, schema.normalize(case.attrs))
    plan = od.explain(case.op, *as_args(schema, metas), device=dev, **case.attrs)
    provider = plan.provider if plan.how == "kernel" else "decomposed" if plan.how == "decomposition" else ""
    return Prepared(schema, arrays, metas, outs, kattrs, provider, None if plan.supported else plan.reason,
                    plan.layouts)


def as_args(schema: OpSchema, flat: list) -> list:
    """Flat inputs back in the op function's argument form (a variadic input as one sequence)."""
    if not schema.variadic:
        return list(flat)
    fixed = len(schema.inputs) - 1
    return list(flat[:fixed]) + [list(flat[fixed:])]


def raised(base: dict, tol_fields: dict, exc: BaseException) -> CaseResult:
    """The failed result of a call that raised ``exc`` (with the traceback of its cause)."""
    cause = exc.__cause__ or exc
    return CaseResult(**base, **tol_fields, status=FAILED, message=f"raised {type(exc).__name__}: {exc}",
                      traceback="".join(traceback.format_exception(type(cause), cause, cause.__traceback__)))


@dataclass
class Kept:
    """One earlier call's outputs: the tensors, and their values as read back right after the call."""

    case: Case
    dtype: str
    tensors: list
    values: list


@dataclass
class History:
    """The outputs of earlier calls of each op on each device: the last call's (whatever its dtype),
    the last call's in each dtype, and the last call's with each dtype and output shapes (a
    buffer pool keyed by shape reuses across cases that are not adjacent). `recheck` reads them
    again after a later call of the same op; `keep` records a call."""

    last: dict = field(default_factory=dict)
    by_dtype: dict = field(default_factory=dict)
    by_shape: dict = field(default_factory=dict)

    def recheck(self, case: Case, dev: Device, dtype: str, shapes: tuple) -> tuple[list[str], list[Kept]]:
        """Problems with earlier outputs of ``case.op`` on ``dev`` that changed by now (``dtype`` and
        ``shapes``: the dtype and output shapes of the call that just ran), and the earlier calls concerned."""
        key = (str(dev), case.op)
        found = (self.last.get(key), self.by_dtype.get(key + (dtype,)), self.by_shape.get(key + (dtype, shapes)))
        problems, concerned = [], []
        for kept in {id(k): k for k in found if k is not None}.values():
            for i, (t, before) in enumerate(zip(kept.tensors, kept.values)):
                label = f"output {i}" if len(kept.tensors) > 1 else "output"
                earlier = f"the earlier call {kept.case.name} [{kept.dtype}]"
                try:
                    now = np.asarray(t.numpy())
                except Exception as exc:  # noqa: BLE001 - the backend cannot read it back any more
                    problems.append(f"the {label} of {earlier} cannot be read back after this call "
                                    f"({type(exc).__name__}: {exc})")
                    concerned.append(kept)
                    break
                change = changed(before, now)
                if change:
                    problems.append(f"the {label} of {earlier} changed after this call ({change}): the kernel "
                                    f"reuses or aliases its output buffers across calls")
                    concerned.append(kept)
                    break
        self._forget(concerned)  # each change is reported once, by the call after which it was seen
        return problems, concerned

    def _forget(self, kept: list) -> None:
        gone = {id(k) for k in kept}
        for table in (self.last, self.by_dtype, self.by_shape):
            for key in [key for key, k in table.items() if id(k) in gone]:
                del table[key]

    def keep(self, case: Case, dev: Device, dtype: str, tensors: list, values: list) -> None:
        """Remember the outputs of ``case`` in ``dtype`` (read back as ``values``) for later rechecks."""
        key = (str(dev), case.op)
        kept = Kept(case, dtype, list(tensors), [np.array(v, copy=True) for v in values])
        self.last[key] = self.by_dtype[key + (dtype,)] = kept
        self.by_shape[key + (dtype, tuple(v.shape for v in values))] = kept


def changed(before: np.ndarray, now: np.ndarray) -> str:
    """"" when ``now`` holds bit for bit what ``before`` did, else where and how it differs."""
    before, now = np.asarray(before), np.asarray(now)
    if before.shape != now.shape or before.dtype != now.dtype:
        return f"was {before.dtype}{list(before.shape)}, now {now.dtype}{list(now.shape)}"
    if before.size == 0:
        return ""
    bits = f"u{before.dtype.itemsize}" if before.dtype.itemsize in (1, 2, 4, 8) else None
    if bits is None:
        same = np.array_equal(before, now, equal_nan=before.dtype.kind in "fc")
        return "" if same else "values differ"
    b = np.ascontiguousarray(before).reshape(-1).view(bits)
    n = np.ascontiguousarray(now).reshape(-1).view(bits)
    diff = np.flatnonzero(b != n)
    if not diff.size:
        return ""
    at = tuple(int(i) for i in np.unravel_index(int(diff[0]), before.shape))
    return (f"{diff.size} of {before.size} elements, first at index {at}: was {_scalar(before[at])}, "
            f"now {_scalar(now[at])}")


def _scalar(value: Any) -> str:
    """One element in words (-0.0 and NaN as Python spells them)."""
    value = np.asarray(value)
    if value.dtype.kind == "f":
        return repr(float(value))
    if value.dtype.kind in "iub":
        return repr(value.item())
    return repr(value)


def _host_copies(host: list) -> list:
    """Copies of the host arrays (and of the buffer a view looks into) to compare with after the call."""
    out: list[Optional[tuple[np.ndarray, Optional[np.ndarray]]]] = []
    for a in host:
        if a is None:
            out.append(None)
            continue
        base = a.base if isinstance(a.base, np.ndarray) else None
        out.append((np.array(a, copy=True), None if base is None else np.array(base, copy=True)))
    return out


def _check_inputs(schema: OpSchema, inputs: list, before: list, host: list, copies: list) -> list[str]:
    """Problems with the inputs after the call: a device tensor whose contents changed, or a host
    array handed to ``od.tensor`` (or the buffer it is a view of) that changed."""
    problems = []
    names = [spec.name for spec in schema.input_specs(len(inputs))]
    for name, t, was, a, copy in zip(names, inputs, before, host, copies):
        if t is None:
            continue
        change = changed(was, np.asarray(t.numpy()))
        if change:
            problems.append(f"input {name!r} was modified by the call on the device ({change})")
        saved, base = copy
        change = changed(saved, a) or ("" if base is None else changed(base, a.base))
        if change:
            problems.append(f"the host array passed as input {name!r} was modified ({change})")
    return problems


def _check_round_trip(schema: OpSchema, before: list, host: list) -> list[str]:
    """Problems with inputs that do not read back as the values they were created from."""
    names = [spec.name for spec in schema.input_specs(len(host))]
    problems = []
    for name, was, a in zip(names, before, host):
        if a is not None:
            change = changed(a, was)
            if change:
                problems.append(f"input {name!r} reads back from the device different from the array it was "
                                f"created from ({change})")
    return problems


def run_case(case: Case, dev: Device, dtype: str, mode: str = "eager",
             call: Optional[Callable[[Case, list, Device], Any]] = None,
             history: Optional[History] = None) -> CaseResult:
    """Run one case on ``dev`` in ``dtype`` and compare it with the float64 reference; check that
    the call left its inputs alone and (with a ``history`` of the run) that it did not change the
    outputs of earlier calls of the op."""
    base: dict[str, Any] = {"op": case.op, "case": case.name, "source": case.source, "dtype": dtype,
                            "repro": reproduction(case, dev, dtype, mode)}
    try:
        schema, arrays, metas, outs, kattrs, provider, reason, layouts = prepare(case, dev, dtype)
    except od.KernelError as exc:  # a supports() that raised: the plugin's failure, not a skip
        return raised(base, {}, exc)
    base["provider"] = provider
    if reason is not None:
        return CaseResult(**base, status=UNSUPPORTED, message=reason)
    with np.errstate(all="ignore"):  # special values: NaN and inf are the point, not a warning
        ref = schema.reference(*arrays, **kattrs)
    refs = [np.asarray(r) for r in (ref if isinstance(ref, tuple) else (ref,))]
    tol = derive(schema, metas, kattrs, dtype, refs)
    tol_fields: dict[str, Any] = {"rtol": tol.rtol, "atol": tol.atol, "reduction_length": tol.reduction_length}
    host = case.host_inputs(arrays)
    copies = _host_copies(host)
    run = call or CALLS[mode]
    try:
        with device_scope(dev, fallback="error"), np.errstate(all="ignore"):
            inputs = [None if a is None else od.tensor(a, device=dev) for a in host]
            # copies: a backend's to_numpy may hand out its own buffer
            before = [None if t is None else np.array(t.numpy(), copy=True) for t in inputs]
            result = run(case, inputs, dev)
    except Exception as exc:  # a kernel that raises is a failure with its traceback; the run goes on
        return raised(base, tol_fields, exc)
    try:
        problems, errors, values = _check_outputs(result, refs, outs, dev, dtype, tol)
        problems += _check_round_trip(schema, before, host) + _check_inputs(schema, inputs, before, host, copies)
        if case.layout != "contiguous" and not problems:
            problems += _check_same_as_contiguous(case, arrays, values, dev, dtype, tol, run)
        if layouts and mode == "graph" and call is None and not problems:
            problems += _check_layouts(case, host, values, dev, tol, layouts)
        if history is not None:
            earlier, concerned = history.recheck(case, dev, dtype, tuple(v.shape for v in values))
            if earlier:
                problems += earlier
                first = concerned[0]
                cases = [case] if first.case.name == case.name else [first.case, case]
                dtypes = dtype if first.dtype == dtype else f"{first.dtype},{dtype}"
                base["repro"] = sequence_reproduction(cases, dev, dtypes, mode)
            results = result if isinstance(result, tuple) else (result,)
            if len(values) == len(results):  # every output a Tensor, read back
                history.keep(case, dev, dtype, list(results), values)
    except Exception as exc:  # e.g. the backend cannot read back what its kernel returned
        return CaseResult(**base, **tol_fields, status=FAILED,
                          message=f"reading the result back raised {type(exc).__name__}: {exc}",
                          traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    worst_abs, worst_rel, worst_ratio = errors
    status = FAILED if problems else PASSED
    return CaseResult(**base, **tol_fields, status=status, max_abs=worst_abs, max_rel=worst_rel,
                      worst_ratio=worst_ratio, message="; ".join(problems))


def _check_same_as_contiguous(case: Case, arrays: list, values: list, dev: Device, dtype: str, tol: Tolerance,
                              run: Callable[[Case, list, Device], Any]) -> list[str]:
    """Problems with the results of ``case`` (inputs passed as views, read back as ``values``)
    against the same call with the inputs passed contiguous: they must agree as they agree with
    the reference (the same NaN and infinity positions, within ``tol``)."""
    return _disagreements(case, arrays, values, dev, tol, run,
                          lambda label: f"{label} with the inputs passed as {case.layout} views differs from the "
                                        f"{label} with the same inputs contiguous")


def _check_layouts(case: Case, host: list, values: list, dev: Device, tol: Tolerance,
                   layouts: Sequence[str]) -> list[str]:
    """Problems with the results of ``case`` when its kernel writes them in the ``layouts`` it declares
    (in a graph, ``passes={"layout": "all"}``) against its results without (``values``)."""
    return _disagreements(case, host, values, dev, tol, _call_graph_all_layouts,
                          lambda label: f"{label} without the layout the kernel declares differs from the {label} "
                                        f"written in it ({', '.join(layouts)}, asked for by graph mode's layout "
                                        f"pass)")


def _disagreements(case: Case, arrays: list, values: list, dev: Device, tol: Tolerance,
                   run: Callable[[Case, list, Device], Any], differs: Callable[[str], str]) -> list[str]:
    """Where ``case`` run again by ``run`` (on new tensors of ``arrays``) disagrees with ``values`` beyond
    ``tol`` (or in its NaN and infinity positions): ``differs(label)`` and the difference, per output."""
    with device_scope(dev, fallback="error"), np.errstate(all="ignore"):
        result = run(case, [None if a is None else od.tensor(a, device=dev) for a in arrays], dev)
    results = result if isinstance(result, tuple) else (result,)
    problems = []
    for i, (got, again) in enumerate(zip(values, results)):
        cmp = compare(got, np.asarray(again.numpy()), tol)
        if not cmp.ok:
            problems.append(f"{differs(f'output {i}' if len(values) > 1 else 'output')}: {cmp.problem}")
    return problems


def _check_outputs(result: Any, refs: list, outs: list, dev: Device, dtype: str, tol: Any
                   ) -> tuple[list[str], tuple[float, float, float], list[np.ndarray]]:
    """Problems with the outputs (count, type, device, shape, dtype, values), the worst errors, and
    the outputs read back (while every output is a Tensor)."""
    results = result if isinstance(result, tuple) else (result,)
    problems: list[str] = []
    worst = Worst()
    values: list[np.ndarray] = []
    if len(results) != len(refs):
        problems.append(f"returned {len(results)} outputs, expected {len(refs)}")
    for i, (got, want, meta) in enumerate(zip(results, refs, outs)):
        label = f"output {i}" if len(refs) > 1 else "output"
        if not isinstance(got, Tensor):
            problems.append(f"{label} is {type(got).__name__}, not a Tensor")
            continue
        if got.device != dev:
            problems.append(f"{label} is on {got.device}, expected {dev}")
        host = np.asarray(got.numpy())
        values.append(host)
        # every output has its inferred dtype: the case's for float ops, cast's attribute, int or bool
        # (comparisons, indices: compared exactly)
        expect = meta.dtype.name
        problems.extend(check_array(label, host, want, meta.shape, expect, tol, worst))
    return problems, (worst.max_abs, worst.max_rel, worst.ratio), values


def check_array(label: str, got: np.ndarray, want: np.ndarray, shape: tuple, dtype: str, tol: Any,
                worst: Worst) -> list[str]:
    """What is wrong with one result array (shape, dtype, values beyond ``tol``); its errors go into ``worst``."""
    if got.shape != tuple(shape):
        return [f"{label} has shape {got.shape}, expected {tuple(shape)}"]
    problems = [f"{label} has dtype {got.dtype}, expected {dtype}"] if got.dtype != np.dtype(dtype) else []
    cmp = worst.compare(got, want, tol)
    if not cmp.ok:
        problems.append(f"{label} outside tolerance {cmp.problem}")
    return problems


def run_cases(cases: Iterable[Case], dev: Device, dtypes: Iterable[str], mode: str = "eager",
              progress: Optional[Callable[[CaseResult], None]] = None,
              call: Optional[Callable[[Case, list, Device], Any]] = None) -> list[CaseResult]:
    """Run every case in every dtype on ``dev``; results in a stable order (op, dtype, case). Each
    call's outputs are read again after the next call of the same op (`History`). In an int or bool
    dtype only the cases that apply to it run (`applies`: ops taking such values)."""
    results = []
    dtypes = list(dtypes)
    history = History()
    for case in cases:
        for dtype in dtypes:
            if not applies(case, dtype):
                continue
            res = run_case(case, dev, dtype, mode, call, history)
            results.append(res)
            if progress is not None:
                progress(res)
    return sorted(results, key=lambda r: (r.op, r.dtype, r.source, r.case))
