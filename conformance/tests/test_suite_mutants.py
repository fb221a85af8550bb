"""The conformance suite catches every classic kernel mistake, and passes a correct backend."""

from __future__ import annotations

import pytest

import opdispatch as od
from opdispatch_conformance.mutants import CAUGHT_BY_VIEWS_ONLY, GRADIENT_OF, MUTANTS, make_mutant_plugin
from opdispatch_conformance.runner import FAILED
from opdispatch_conformance.suite import collect_cases, run_device


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_is_caught(clean_registry, name):
    op = MUTANTS[name][0]
    status = od.register_plugin(make_mutant_plugin(name))
    assert status.status == "loaded", status
    forward = GRADIENT_OF.get(op)
    cases = collect_cases([op] + ([forward] if forward else []), random_per_op=10, onnx=False)
    run = run_device(od.Device(f"mutant_{name}:0"), cases, out=None)
    failed = [r for r in run["results"] if r.status == FAILED]
    failed_ops = {r.op for r in failed}
    assert op in failed_ops, f"mutant {name} of {op} passed every case"
    # Only the broken op, and gradients that run through it (its own second-order check, or the
    # gradient of the forward op whose backward it is, or of the forward op it feeds its outputs to).
    assert failed_ops <= {op, op + ".grad", f"{forward}.grad"}, failed_ops
    if forward:
        assert f"{forward}.grad" in failed_ops, f"the gradient check of {forward} missed the broken {op}"
    assert all(r.repro.startswith("opdispatch conformance --device mutant_") for r in failed)
    if name in CAUGHT_BY_VIEWS_ONLY:  # the inputs passed as views catch it, and nothing else does
        layouts = {c.name: c.layout for c in cases}
        assert {layouts[r.case] for r in failed} <= {"strided", "reversed", "transposed"}, [r.case for r in failed]


def test_the_correct_backend_passes_the_same_cases():
    ops = sorted({op for op, _ in MUTANTS.values()} | set(GRADIENT_OF.values()))
    run = run_device(od.Device("numpy:0"), collect_cases(ops, random_per_op=10, onnx=False), out=None)
    assert [r for r in run["results"] if r.status == FAILED] == []
