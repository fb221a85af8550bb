"""Assemble the conformance cases and run them on devices, printing progress per op."""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Iterable, Optional, TextIO

from ..device import Device
from ..dtypes import FLOAT_DTYPES
from ..errors import InvalidArgumentError
from ..ops import OPS
from ..registry import registry
from .cases import Case, grid_cases
from .gradients import SUFFIX, gradient_cases, run_gradient_cases
from .random_cases import random_cases
from .runner import FAILED, PASSED, UNSUPPORTED, CaseResult, run_cases


def collect_cases(ops: Optional[Iterable[str]] = None, random_per_op: int = 10, seed: int = 0,
                  onnx: bool = True, notes: Optional[list[str]] = None) -> list[Case]:
    """Grid cases, ``random_per_op`` seeded random cases per op and, when the ``onnx`` package is
    installed, the ONNX-derived cases; restricted to ``ops`` when given."""
    wanted = sorted(OPS) if ops is None else list(ops)
    unknown = [op for op in wanted if op not in OPS]
    if unknown:
        raise InvalidArgumentError(f"conformance: argument 'ops' got {unknown}; allowed: {sorted(OPS)}")
    cases = [c for c in grid_cases() if c.op in wanted]
    for op in wanted:
        cases.extend(random_cases(op, random_per_op, seed))
    if onnx:
        if importlib.util.find_spec("onnx") is None:
            if notes is not None:
                notes.append("the onnx package is not installed: the ONNX-derived cases are left out "
                             "(pip install onnx)")
        else:
            from .onnx_cases import conformance_cases

            cases.extend(c for c in conformance_cases() if c.op in wanted)
    return cases


def default_dtypes(dev: Device) -> list[str]:
    """The float dtypes ``dev`` supports, in a fixed order."""
    supported = registry().runtime(dev).info.dtype_set
    return [d.name for d in FLOAT_DTYPES if d in supported]


GRADIENT_CHOICES = ("yes", "no", "only")


def run_device(dev: Device, cases: list[Case], dtypes: Optional[list[str]] = None, mode: str = "eager",
               out: Optional[TextIO] = sys.stderr, gradients: str = "yes") -> dict:
    """Run ``cases`` on ``dev`` op by op, printing a progress line per op; return the run record.

    ``gradients`` says whether the gradient checks (`opdispatch.conformance.gradients`) of the
    differentiable cases run too: "yes", "no" or "only" (then the forward checks do not run).
    """
    if gradients not in GRADIENT_CHOICES:
        raise InvalidArgumentError(f"conformance: argument 'gradients' got {gradients!r}; "
                                   f"allowed: {', '.join(GRADIENT_CHOICES)}")
    rt = registry().runtime(dev)
    backend = registry().backends()[rt.backend]
    dtypes = dtypes or default_dtypes(dev)
    by_op: dict[str, list[Case]] = {}
    for case in cases:
        by_op.setdefault(case.op, []).append(case)
    results: list[CaseResult] = []
    start = time.perf_counter()
    for n, (op, op_cases) in enumerate(sorted(by_op.items()), 1):
        batches = []
        if gradients != "only":
            batches.append((op, run_cases(op_cases, dev, dtypes, mode)))
        if gradients != "no" and gradient_cases(op_cases):
            batches.append((op + SUFFIX, run_gradient_cases(op_cases, dev, dtypes, mode)))
        for label, rs in batches:
            results.extend(rs)
            if out is not None:
                counts = {s: sum(r.status == s for r in rs) for s in (PASSED, FAILED, UNSUPPORTED)}
                print(f"  [{dev} {n:>2}/{len(by_op)}] {label:<27} {counts[PASSED]:>4} passed {counts[FAILED]:>4} "
                      f"failed {counts[UNSUPPORTED]:>4} unsupported", file=out, flush=True)
    if out is not None:
        print(f"  [{dev}] {len(results)} checks in {time.perf_counter() - start:.1f} s", file=out, flush=True)
    return {"backend": rt.backend, "version": backend.version, "mode": mode, "dtypes": dtypes, "results": results}
