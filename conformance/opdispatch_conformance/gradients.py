"""Gradient conformance: every op's gradient on the device under test against the reference backward.

For a forward case ``y = op(inputs)``, the device computes ``d<y, dy>/d input`` with
`GradientTape` (the op's VJP rule, run with the device's own kernels: backward ops such as
``conv2d_backward_input`` and the ops composed VJPs are written with), for a seeded random
``dy``; in graph mode the forward call and the tape's backward are one ``od.function``. The
oracle runs the very same VJP rules on the core's hidden float64 ``reference:0`` device, whose
kernels are the reference implementations, so a wrong kernel anywhere in the backward
pass of the device shows up here as a wrong gradient of the op that used it. The reference
backward itself is checked against float64 finite differences in the project's tests.

Results are recorded under the op name ``"<op>.grad"`` so reports keep them beside the forward rows.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import opdispatch as od
from opdispatch import Device, GradientError, GradientTape, UnsupportedError, op_function
from opdispatch import device as device_scope
from opdispatch.ops import OPS, OpSchema

from .cases import Case
from .runner import FAILED, PASSED, UNSUPPORTED, CaseResult, as_args, check_array, prepare, raised, reproduction
from .tolerance import Tolerance, Worst, bound

SUFFIX = ".grad"
# A VJP chains a few rounded ops (and may cancel): its bound gets this factor on top of the op's own.
CHAIN_FACTOR = 4.0
_F64 = np.dtype("float64")


REFERENCE = Device("reference:0")
"""The core's hidden built-in device running every op's float64 reference: the gradients' oracle."""


def has_gradient(case: Case) -> bool:
    """Whether ``case`` is a call whose gradient is checked: the op has a VJP rule and a float input."""
    return OPS[case.op].vjp is not None and any(i is not None and i.kind != "labels" and i.dtype in ("", "float16",
                                                "float32", "float64") for i in case.inputs)


def gradient_cases(cases: list[Case]) -> list[Case]:
    """The cases of ``cases`` whose gradients are checked. Left to the forward checks: the
    ONNX-derived ones (their inputs are large and add nothing a backward kernel does not see here),
    the special-value ones (gradients through NaN and inf are conventions, and the backward ops'
    own special-value cases check their kernels) and the inputs passed as views (the same values
    as their contiguous grid case)."""
    return [c for c in cases if has_gradient(c) and not c.source.startswith("onnx:") and c.source != "special"
            and c.layout == "contiguous"]


def _output_gradient(case: Case, shape: tuple, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(case.seed + 7919)
    return rng.standard_normal(shape).astype(dtype)


def _tensors(dev: Device, arrays: list) -> list:
    return [None if a is None else od.tensor(a, device=dev) for a in arrays]


def _reference_gradients(case: Case, arrays: list, dy: np.ndarray) -> dict[int, np.ndarray]:
    """The float64 reference gradients of ``<op(arrays)[0], dy>`` for every float input the output
    depends on, by input index."""
    tensors = _tensors(REFERENCE, arrays)
    candidates = [i for i, a in enumerate(arrays) if a is not None and a.dtype.kind == "f"]
    with GradientTape(persistent=True) as tape:
        tape.watch([tensors[i] for i in candidates])
        out = op_function(case.op)(*as_args(OPS[case.op], tensors), **case.attrs)
    y = out[0] if isinstance(out, tuple) else out
    seed = od.tensor(dy.astype(y.dtype), device=REFERENCE)  # cast's output dtype is its attribute's
    found = {}
    for i in candidates:
        try:
            g = tape.gradient(y, tensors[i], output_gradients=seed)
        except GradientError as exc:
            if "does not depend" in str(exc):
                continue
            raise
        found[i] = np.asarray(g.numpy())
    return found


def _device_gradients(dev: Device, case: Case, arrays: list, dy: np.ndarray, sources: list[int],
                      mode: str) -> dict[int, np.ndarray]:
    """The gradients of ``<op(arrays)[0], dy>`` in ``sources`` computed on ``dev``: eagerly, or in
    graph mode as one ``od.function`` holding the forward call and the tape's backward."""
    tensors = _tensors(dev, arrays)
    present = [i for i, t in enumerate(tensors) if t is not None]

    def gradients(seed: Any, *given: Any) -> tuple:
        args = list(tensors)
        for i, t in zip(present, given):
            args[i] = t
        with GradientTape() as tape:
            tape.watch([args[i] for i in sources])
            out = op_function(case.op)(*as_args(OPS[case.op], args), **case.attrs)
        y = out[0] if isinstance(out, tuple) else out
        return tuple(tape.gradient(y, [args[i] for i in sources], output_gradients=seed))

    seed = od.tensor(dy, device=dev)
    run = od.function(gradients) if mode == "graph" else gradients
    with device_scope(dev, fallback="error"):
        grads = run(seed, *[tensors[i] for i in present])
    return {i: np.asarray(g.numpy()) for i, g in zip(sources, grads)}


def gradient_tolerance(schema: OpSchema, metas: list, kattrs: dict, dtype: str, out_size: int,
                       refs: list[np.ndarray]) -> Tolerance:
    """The bound for one gradient: the op's own factor times `CHAIN_FACTOR`, and a reduction length
    that covers both the forward reduction and the backward one (at most the output's size)."""
    k = max(int(schema.reduction_length(metas, kattrs)), out_size)
    return bound(dtype, k, schema.tolerance_factor * CHAIN_FACTOR, refs)


def gradient_reproduction(case: Case, dev: Device, dtype: str, mode: str = "eager") -> str:
    """A one-line command that reruns this gradient check."""
    return reproduction(case, dev, dtype, mode).replace(f"--mode {mode}", f"--mode {mode} --gradients only", 1)


def run_gradient_case(case: Case, dev: Device, dtype: str, mode: str = "eager") -> Optional[CaseResult]:
    """Check the gradient of ``case`` on ``dev`` in ``dtype`` (through ``od.function`` in graph
    ``mode``); None when no gradient flows to any input."""
    base: dict[str, Any] = {"op": case.op + SUFFIX, "case": case.name, "source": case.source, "dtype": dtype,
                            "repro": gradient_reproduction(case, dev, dtype, mode)}
    try:
        schema, arrays, metas, outs, kattrs, provider, reason, _ = prepare(case, dev, dtype)
    except od.KernelError as exc:
        return raised(base, {}, exc)
    base["provider"] = provider
    if reason is not None:
        return CaseResult(**base, status=UNSUPPORTED, message=f"forward: {reason}")
    if outs[0].dtype.kind != "f":  # a bool or integer output (comparisons, indices): no gradient flows
        return None
    dy = _output_gradient(case, outs[0].shape, outs[0].dtype.name)  # the case's dtype but for cast
    wide = [None if a is None else (a.astype(_F64) if a.dtype.kind == "f" else a) for a in arrays]
    with np.errstate(all="ignore"):  # NaN and inf in special-value cases are the point, not a warning
        refs = _reference_gradients(case, wide, dy.astype(_F64))
    if not refs:
        return None
    tol = gradient_tolerance(schema, metas, kattrs, dtype, int(np.prod(outs[0].shape, dtype=np.int64)),
                             list(refs.values()))
    tol_fields: dict[str, Any] = {"rtol": tol.rtol, "atol": tol.atol, "reduction_length": tol.reduction_length}
    try:
        with np.errstate(all="ignore"):
            got = _device_gradients(dev, case, arrays, dy, sorted(refs), mode)
    except UnsupportedError as exc:  # a backward op the device lacks: reported, not failed
        return CaseResult(**base, status=UNSUPPORTED, message=f"backward: {exc}")
    except Exception as exc:
        return raised(base, tol_fields, exc)
    problems: list[str] = []
    worst = Worst()
    for i, want in sorted(refs.items()):
        problems.extend(check_array(f"d/d {schema.input_specs(len(arrays))[i].name}", got[i], want, want.shape, dtype,
                                    tol, worst))
    return CaseResult(**base, **tol_fields, status=FAILED if problems else PASSED, max_abs=worst.max_abs,
                      max_rel=worst.max_rel, worst_ratio=worst.ratio, message="; ".join(problems))


def run_gradient_cases(cases: list[Case], dev: Device, dtypes: list[str], mode: str = "eager") -> list[CaseResult]:
    """`run_gradient_case` over ``cases`` x the float ones of ``dtypes`` (gradients are float), in a
    stable order."""
    results = []
    for case in gradient_cases(cases):
        for dtype in (d for d in dtypes if np.dtype(d).kind == "f"):
            res = run_gradient_case(case, dev, dtype, mode)
            if res is not None:
                results.append(res)
    return sorted(results, key=lambda r: (r.op, r.dtype, r.source, r.case))
