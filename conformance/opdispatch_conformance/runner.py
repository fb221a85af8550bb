"""Run conformance cases on one device and record, per case, what happened and how accurate it was.

Each case runs through the public API on the device under test, with the default placement
policy (no fallback), so what is measured is the device's own kernel. A combination the backend
declares unsupported is recorded as such with its reason; a kernel that raises, returns the
wrong shape, dtype or device, or a result outside the derived tolerance is a failure, and the
run goes on with the next case.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, NamedTuple, Optional

import numpy as np

import opdispatch as od
from opdispatch import Device, Tensor, TensorMeta, op_function, tensor
from opdispatch import device as device_scope
from opdispatch.ops import OPS, OpSchema

from .cases import Case
from .tolerance import Worst, derive

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
        return f"{head} --ops {case.op} --only '{case.name}'"
    return f"{head} --case '{case.to_json()}'"


def _call(case: Case, arrays: list, dev: Device) -> Any:
    inputs = [None if a is None else tensor(a, device=dev) for a in arrays]
    fn: Callable[..., Any] = op_function(case.op)
    return fn(*as_args(OPS[case.op], inputs), **case.attrs)


def _call_graph(case: Case, arrays: list, dev: Device) -> Any:
    """The case through ``od.function``: present inputs are traced arguments, attributes static."""
    inputs = [None if a is None else tensor(a, device=dev) for a in arrays]
    fn: Callable[..., Any] = op_function(case.op)
    present = [i for i, t in enumerate(inputs) if t is not None]

    def traced(*tensors: Any) -> Any:
        args = list(inputs)
        for i, t in zip(present, tensors):
            args[i] = t
        return fn(*as_args(OPS[case.op], args), **case.attrs)

    return od.function(traced)(*[inputs[i] for i in present])


CALLS: dict[str, Callable[[Case, list, Device], Any]] = {"eager": _call, "graph": _call_graph}


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


def prepare(case: Case, dev: Device, dtype: str) -> Prepared:
    """Build the inputs of ``case`` in ``dtype`` and ask ``dev`` (`od.explain`) how it runs the call.
    A ``supports()`` that raises is reported as the reason (the case then fails, it is not skipped)."""
    schema = OPS[case.op]
    arrays = case.make_inputs(dtype)
    metas = [None if a is None else TensorMeta(a.shape, a.dtype) for a in arrays]
    outs, kattrs = schema.infer(schema.name, metas, schema.normalize(case.attrs))
    plan = od.explain(case.op, *as_args(schema, metas), device=dev, **case.attrs)
    provider = plan.provider if plan.how == "kernel" else "decomposed" if plan.how == "decomposition" else ""
    return Prepared(schema, arrays, metas, outs, kattrs, provider, None if plan.supported else plan.reason)


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


def run_case(case: Case, dev: Device, dtype: str, mode: str = "eager",
             call: Optional[Callable[[Case, list, Device], Any]] = None) -> CaseResult:
    """Run one case on ``dev`` in ``dtype`` and compare it with the float64 reference."""
    base: dict[str, Any] = {"op": case.op, "case": case.name, "source": case.source, "dtype": dtype,
                            "repro": reproduction(case, dev, dtype, mode)}
    try:
        schema, arrays, metas, outs, kattrs, provider, reason = prepare(case, dev, dtype)
    except od.KernelError as exc:  # a supports() that raised: the plugin's failure, not a skip
        return raised(base, {}, exc)
    base["provider"] = provider
    if reason is not None:
        return CaseResult(**base, status=UNSUPPORTED, message=reason)
    ref = schema.reference(*arrays, **kattrs)
    refs = [np.asarray(r) for r in (ref if isinstance(ref, tuple) else (ref,))]
    tol = derive(schema, metas, kattrs, dtype, refs)
    tol_fields: dict[str, Any] = {"rtol": tol.rtol, "atol": tol.atol, "reduction_length": tol.reduction_length}
    try:
        with device_scope(dev, fallback="error"):
            result = (call or CALLS[mode])(case, arrays, dev)
    except Exception as exc:  # a kernel that raises is a failure with its traceback; the run goes on
        return raised(base, tol_fields, exc)
    try:
        problems, errors = _check_outputs(result, refs, outs, dev, dtype, tol)
    except Exception as exc:  # e.g. the backend cannot read back what its kernel returned
        return CaseResult(**base, **tol_fields, status=FAILED,
                          message=f"reading the result back raised {type(exc).__name__}: {exc}",
                          traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    worst_abs, worst_rel, worst_ratio = errors
    status = FAILED if problems else PASSED
    return CaseResult(**base, **tol_fields, status=status, max_abs=worst_abs, max_rel=worst_rel,
                      worst_ratio=worst_ratio, message="; ".join(problems))


def _check_outputs(result: Any, refs: list, outs: list, dev: Device, dtype: str, tol: Any
                   ) -> tuple[list[str], tuple[float, float, float]]:
    """Problems with the outputs (count, type, device, shape, dtype, values) and the worst errors."""
    results = result if isinstance(result, tuple) else (result,)
    problems: list[str] = []
    worst = Worst()
    if len(results) != len(refs):
        problems.append(f"returned {len(results)} outputs, expected {len(refs)}")
    for i, (got, want, meta) in enumerate(zip(results, refs, outs)):
        label = f"output {i}" if len(refs) > 1 else "output"
        if not isinstance(got, Tensor):
            problems.append(f"{label} is {type(got).__name__}, not a Tensor")
            continue
        if got.device != dev:
            problems.append(f"{label} is on {got.device}, expected {dev}")
        problems.extend(check_array(label, np.asarray(got.numpy()), want, meta.shape, dtype, tol, worst))
    return problems, (worst.max_abs, worst.max_rel, worst.ratio)


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
    """Run every case in every dtype on ``dev``; results in a stable order (op, dtype, case)."""
    results = []
    dtypes = list(dtypes)
    for case in cases:
        for dtype in dtypes:
            res = run_case(case, dev, dtype, mode, call)
            results.append(res)
            if progress is not None:
                progress(res)
    return sorted(results, key=lambda r: (r.op, r.dtype, r.source, r.case))
