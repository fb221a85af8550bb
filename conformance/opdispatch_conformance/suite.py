"""Assemble the conformance cases and run them on devices, printing progress per op."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import sys
import time
from typing import Iterable, Optional, TextIO

import numpy as np
import opdispatch as od
from opdispatch import Device, InvalidArgumentError
from opdispatch.ops import OPS

from .cases import NON_FLOAT_DTYPES, Case, applies, grid_cases, layout_cases, random_cases, special_cases
from .gradients import SUFFIX, gradient_cases, run_gradient_cases
from .runner import FAILED, PASSED, UNSUPPORTED, CaseResult, run_cases

FLOAT_DTYPES = tuple(np.dtype(d) for d in ("float16", "float32", "float64"))
DTYPE_CHOICES: tuple[str, ...] = tuple(d.name for d in FLOAT_DTYPES) + NON_FLOAT_DTYPES
"""The dtypes a run may name: the floats, and int32, int64 and bool (the cases of the ops taking such
values, compared exactly)."""


def check_dtypes(dtypes: Iterable[str]) -> list[str]:
    """``dtypes`` as a list, or an `InvalidArgumentError` naming the unknown ones and `DTYPE_CHOICES`."""
    names = list(dtypes)
    unknown = [d for d in names if d not in DTYPE_CHOICES]
    if unknown or not names:
        raise InvalidArgumentError(f"conformance: argument 'dtypes' got {', '.join(map(repr, unknown or names))}; "
                                   f"allowed: one or more of {', '.join(DTYPE_CHOICES)}")
    return names


def dtypes_argument(text: str) -> str:
    """argparse ``type=`` of ``--dtypes``: the comma-separated names, checked (`check_dtypes`); an
    unknown one is a usage error listing `DTYPE_CHOICES`."""
    try:
        return ",".join(check_dtypes(d.strip() for d in text.split(",") if d.strip()))
    except InvalidArgumentError:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: comma-separated dtypes among "
                                         f"{', '.join(DTYPE_CHOICES)}") from None


def collect_cases(ops: Optional[Iterable[str]] = None, random_per_op: int = 10, seed: int = 0,
                  onnx: bool = True, notes: Optional[list[str]] = None) -> list[Case]:
    """Grid cases, ``random_per_op`` seeded random cases per op, the special-value cases, grid cases
    with their inputs passed as NumPy views and, when the ``onnx`` package is installed, the
    ONNX-derived cases; restricted to ``ops`` when given."""
    wanted = sorted(OPS) if ops is None else list(ops)
    unknown = [op for op in wanted if op not in OPS]
    if unknown:
        raise InvalidArgumentError(f"conformance: argument 'ops' got {unknown}; allowed: {sorted(OPS)}")
    cases = [c for c in grid_cases() if c.op in wanted]
    for op in wanted:
        cases.extend(random_cases(op, random_per_op, seed))
    cases.extend(c for c in special_cases() if c.op in wanted)
    cases.extend(c for c in layout_cases() if c.op in wanted)
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
    supported = od.device_info(dev).dtype_set
    return [d.name for d in FLOAT_DTYPES if d in supported]


GRADIENT_CHOICES = ("yes", "no", "only")


def run_device(dev: Device, cases: list[Case], dtypes: Optional[list[str]] = None, mode: str = "eager",
               out: Optional[TextIO] = sys.stderr, gradients: str = "yes") -> dict:
    """Run ``cases`` on ``dev`` op by op, printing a progress line per op; return the run record.

    ``gradients`` says whether the gradient checks (`opdispatch_conformance.gradients`) of the
    differentiable cases run too: "yes", "no" or "only" (then the forward checks do not run).
    """
    if gradients not in GRADIENT_CHOICES:
        raise InvalidArgumentError(f"conformance: argument 'gradients' got {gradients!r}; "
                                   f"allowed: {', '.join(GRADIENT_CHOICES)}")
    backend = od.backends(hidden=True)[dev.backend]
    dtypes = check_dtypes(dtypes) if dtypes else default_dtypes(dev)
    by_op: dict[str, list[Case]] = {}
    for case in cases:
        by_op.setdefault(case.op, []).append(case)
    results: list[CaseResult] = []
    start = time.perf_counter()
    for n, (op, op_cases) in enumerate(sorted(by_op.items()), 1):
        batches = []
        for provider in competing_providers(dev, op):
            label = op if provider is None else f"{op} [{provider}]"
            with (od.use_provider(provider) if provider is not None else contextlib.nullcontext()):
                if gradients != "only":
                    batches.append((label, _pinned(run_cases(op_cases, dev, dtypes, mode), provider)))
                if gradients != "no" and gradient_cases(op_cases):
                    batches.append((label + SUFFIX, _pinned(run_gradient_cases(op_cases, dev, dtypes, mode),
                                                            provider)))
        for label, rs in batches:
            results.extend(rs)
            if out is not None:
                counts = {s: sum(r.status == s for r in rs) for s in (PASSED, FAILED, UNSUPPORTED)}
                print(f"  [{dev} {n:>2}/{len(by_op)}] {label:<27} {counts[PASSED]:>4} passed {counts[FAILED]:>4} "
                      f"failed {counts[UNSUPPORTED]:>4} unsupported", file=out, flush=True)
    if out is not None:
        print(f"  [{dev}] {len(results)} checks in {time.perf_counter() - start:.1f} s", file=out, flush=True)
        for dtype in dtypes:
            if np.dtype(dtype).kind != "f" and not any(applies(c, dtype) for c in cases):
                print(f"  [{dev}] note: no selected case takes {dtype} (the ops taking int and bool values: "
                      f"comparisons, where, argmax/argmin, max/min, layout ops, cast, gather ...)", file=out,
                      flush=True)
    return {"backend": backend.name, "version": backend.version, "mode": mode, "dtypes": dtypes, "results": results,
            "device": device_facts(dev), "providers": provider_versions(results)}


def device_facts(dev: Device) -> dict:
    """What a report records of ``dev`` beside its results: the name and dtypes its backend declares, and
    what it tells of the device's driver (`opdispatch.backend.DeviceInfo.driver`)."""
    info = od.device_info(dev)
    return {"name": info.name, "dtypes": sorted(d.name for d in info.dtype_set), "driver": dict(info.driver)}


def provider_versions(results: Iterable[CaseResult]) -> dict[str, str]:
    """The version of each kernel provider whose kernels ran (or were pinned) in ``results``, by name (a
    backend's own kernels and decompositions are not providers: the run's backend version covers them)."""
    providers = od.providers()
    used = {name for r in results for name in (r.provider, r.pinned) if name in providers}
    return {name: providers[name].version for name in sorted(used)}


def _pinned(results: list[CaseResult], provider: Optional[str]) -> list[CaseResult]:
    """Results of a run pinned to ``provider`` all name it (declined cases included)."""
    return results if provider is None else [dataclasses.replace(r, pinned=provider) for r in results]


def competing_providers(dev: Device, op: str) -> list[Optional[str]]:
    """Whose kernels of ``op`` to check on ``dev``: [None] (whatever dispatch picks: the one kernel,
    or the decomposition) when at most one enabled provider has a kernel for it, else each of them,
    in dispatch order (the suite certifies every provider, not only the winner). A source with several
    kernels of one op (for disjoint dtypes) counts once: the call's dtype picks among them."""
    names = list(dict.fromkeys(k.provider for k in od.kernels(dev, op) if k.enabled))
    return [None] if len(names) <= 1 else list(names)
