"""The float64 reference kernels checked against ONNX's own backend test cases.

Every ONNX node test of an op we have (plus the ``*_expanded`` function bodies of Softmax and
LogSoftmax, and the small PyTorch exports shipped with onnx) becomes one test, id = the ONNX case
name. The graph is translated into opdispatch op calls (``opdispatch/conformance/onnx_cases.py``) and each call goes
through the op's schema: ``normalize`` the user attributes, ``infer`` shapes and kernel attributes,
run ``reference``. The same cases also run through the public eager API on ``numpy:0``.

Cases that cannot run are skipped with a reason, never dropped: by name in `SKIPS`, or by one of
the named rules in `RULES`. ``pytest tests/test_reference_onnx.py -rs`` lists them;
``-rP`` (or ``-s``) shows the per-op count of cases run, printed by `test_cases_per_op`.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from typing import Callable, Optional

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("onnx", reason="the ONNX backend test data ships with the onnx package (extra 'test')")

from opdispatch_conformance.onnx_cases import (  # noqa: E402 - after the importorskip
    COVERED_OPS, TRANSLATORS, EagerExecutor, OnnxCase, ReferenceExecutor, float_dtype, load_cases, missing_od_ops,
    node_attrs, run_graph)

# ONNX's own defaults for its backend tests (every case in scope uses them). They also cover the
# AveragePool case whose expected values were typed by hand to 4 decimals
# (test_averagepool_2d_ceil_last_window_starts_on_pad, expected 0.1511 / 0.2841 / 0.3572; e.g.
# 1.3595 / 9 = 0.151056, a relative rounding error of 3e-4): rtol 1e-3 absorbs it. Expected outputs are float32, computed by ONNX in float32; the
# float64 reference differs from them by float32 rounding, far inside rtol 1e-3, and atol 1e-7
# has sufficed for every element near zero, so neither tolerance is widened.
RTOL = 1e-3
ATOL = 1e-7

#: Cases skipped by name (exact name or fnmatch pattern) -> reason.
SKIPS: dict[str, str] = {
    "test_training_dropout*": (
        "ONNX's expected values come from a random mask (NumPy's RNG); opdispatch's masks are its own "
        "counter-based hash of (seed, index), the same on every device (tests/test_dropout.py)"),
    "test_reduce_max_empty_set*": (
        "ONNX defines the max over an empty axis as -inf (False for bool); opdispatch's max refuses an empty reduced "
        "axis with ShapeError by design (ops/reduce.py: 'max of nothing is undefined')"),
    "test_reduce_min_empty_set": (
        "ONNX defines the min over an empty axis as +inf; opdispatch's min refuses an empty reduced axis, as max "
        "does"),
}

#: Outputs not compared, per case: case name -> {output name: reason}.
IGNORED_OUTPUTS: dict[str, dict[str, str]] = {
    "test_maxpool_with_argmax_2d_precomputed_pads": {
        "z": "MaxPool's optional Indices output: max_pool2d returns the values only"},
    "test_maxpool_with_argmax_2d_precomputed_strides": {
        "z": "MaxPool's optional Indices output (storage_order=1): max_pool2d returns the values only"},
}


# --------------------------------------------------------------------------------------------
# Skip rules: each names its reason; the first that applies wins.
# --------------------------------------------------------------------------------------------


def _unsupported_ops(case: OnnxCase) -> Optional[str]:
    missing = [op for op in case.op_types if op not in TRANSLATORS]
    if missing:
        return f"uses ONNX op(s) {missing} with no opdispatch counterpart"
    lacking = missing_od_ops(case.op_types)
    if lacking:
        return f"its translation needs od op(s) {lacking}, which this opdispatch does not have yet"
    return None


VALUE_OPS = frozenset({"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "ArgMax", "ArgMin", "Where",
                       "Not", "ReduceMax", "ReduceMin"})
"""ONNX ops whose opdispatch counterparts take and give int32, int64 and bool tensors too (the compare
family, where, argmax/argmin, max/min); every other op computes in float."""
VALUE_DTYPES = frozenset(np.dtype(d) for d in ("int32", "int64", "bool"))


def _non_float_data(case: OnnxCase) -> Optional[str]:
    ignored = IGNORED_OUTPUTS.get(case.name, {})
    values_ok = all(n.op_type in VALUE_OPS for n in case.nodes)
    for _, expected in case.data_sets:
        for name, array in expected:
            if name in ignored or float_dtype(array.dtype) or (values_ok and array.dtype in VALUE_DTYPES):
                continue
            allowed = "float32/float64, and int32/int64/bool in comparisons, where, argmax/argmin and max/min"
            return f"{array.dtype} data: opdispatch ops take {allowed} (API.md)"
    return None


def _value_shape(case: OnnxCase, name: str) -> Optional[tuple]:
    if name in case.initializers:
        return case.initializers[name].shape
    for feeds, _ in case.data_sets:
        if name in feeds:
            return feeds[name].shape
    return None


def _spatial_rank(case: OnnxCase) -> Optional[str]:
    for node in case.nodes:
        if node.op_type not in ("Conv", "ConvTranspose", "MaxPool", "AveragePool"):
            continue
        a = node_attrs(node)
        if "kernel_shape" in a:
            rank = len(a["kernel_shape"])
        else:
            w = _value_shape(case, node.input[1]) if node.op_type in ("Conv", "ConvTranspose") else None
            rank = None if w is None else len(w) - 2
        if rank != 2:
            what = "convolution" if node.op_type.startswith("Conv") else "pooling"
            return f"{rank}-D {what}: our op is 2-D (NCHW)"
    return None


def _avg_pool_dilation(case: OnnxCase) -> Optional[str]:
    for node in case.nodes:
        if node.op_type == "AveragePool" and any(d != 1 for d in node_attrs(node).get("dilations", ())):
            return "AveragePool with dilations: avg_pool2d has no dilation argument (API.md)"
    return None


def _batch_norm_training(case: OnnxCase) -> Optional[str]:
    for node in case.nodes:
        if node.op_type != "BatchNormalization":
            continue
        a = node_attrs(node)
        training = (a.get("training_mode", 0) == 1                           # opset >= 14
                    or (case.opset < 7 and a.get("is_test", 0) == 0)          # opset < 7
                    or len([o for o in node.output if o]) > 1)                # running stats out
        if training:
            return ("BatchNormalization in training mode: ONNX's momentum is the opposite sense of "
                    "PyTorch's (running = momentum * running + (1 - momentum) * batch) and its running "
                    "variance uses the biased batch variance; our batch_norm follows PyTorch")
        if a.get("spatial", 1) == 0:
            return "BatchNormalization with spatial=0 (per-activation statistics): ours is per channel"
    return None


def _select_last_index(case: OnnxCase) -> Optional[str]:
    for node in case.nodes:
        if node.op_type in ("ArgMax", "ArgMin") and any(a.name == "select_last_index" and a.i for a in node.attribute):
            return "select_last_index=1: od.argmax/argmin return the first index of ties (NumPy's rule)"
    return None


RULES: tuple[Callable[[OnnxCase], Optional[str]], ...] = (_select_last_index,
    _unsupported_ops, _non_float_data, _spatial_rank, _avg_pool_dilation, _batch_norm_training,
)


def skip_reason(case: OnnxCase) -> Optional[str]:
    """Why ``case`` cannot run, or None."""
    for pattern, reason in SKIPS.items():
        if fnmatch.fnmatchcase(case.name, pattern):
            return reason
    for rule in RULES:
        reason = rule(case)
        if reason:
            return reason
    return None


# --------------------------------------------------------------------------------------------
# The cases, loaded once per process (building ONNX's node cases takes a few seconds).
# --------------------------------------------------------------------------------------------

CASES = load_cases()
SKIP_REASONS = {c.name: skip_reason(c) for c in CASES}


def _compare(case: OnnxCase, values: dict, expected: tuple, ex, *, want_dtype: Callable) -> None:
    ignored = IGNORED_OUTPUTS.get(case.name, {})
    for name, want in expected:
        if name in ignored:
            continue
        assert name in values, f"{case.name}: output {name!r} was not computed by the translation"
        got = ex.to_numpy(values[name])
        assert got.dtype == want_dtype(want), \
            f"{case.name} ({ex.name}): output {name!r} has dtype {got.dtype}, expected {want_dtype(want)}"
        assert got.shape == want.shape, \
            f"{case.name} ({ex.name}): output {name!r} has shape {got.shape}, ONNX expects {want.shape}"
        np.testing.assert_allclose(got, want.astype(np.float64), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{case.name} ({ex.name}): output {name!r}")


def _run_case(case: OnnxCase, ex, want_dtype: Callable) -> None:
    reason = SKIP_REASONS[case.name]
    if reason:
        pytest.skip(f"{case.name}: {reason}")
    for feeds, expected in case.data_sets:
        values = run_graph(case, feeds, ex)
        _compare(case, values, expected, ex, want_dtype=want_dtype)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_matches_onnx(case: OnnxCase) -> None:
    """Schema (normalize + infer) and float64 reference kernel against ONNX's expected outputs."""
    # the reference computes floats in float64; bool and int results keep their dtype
    _run_case(case, ReferenceExecutor(),
              want_dtype=lambda want: np.dtype(np.float64) if want.dtype.kind == "f" else want.dtype)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_eager_numpy_matches_onnx(case: OnnxCase) -> None:
    """The public ops on numpy:0, in the data's own dtype, against ONNX's expected outputs."""
    supported = od.device_info("numpy:0").dtype_set
    odd = sorted({a.dtype.name for feeds, _ in case.data_sets for a in feeds.values()
                  if a.dtype.kind == "f" and a.dtype not in supported})
    if odd and not SKIP_REASONS[case.name]:
        pytest.skip(f"{case.name}: {odd} data, which numpy:0 does not support")
    _run_case(case, EagerExecutor("numpy:0"), want_dtype=lambda want: want.dtype)


# --------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------

#: At least this many cases must run (not skip) per ONNX op: a guard against a collection or
#: translation change silently dropping coverage. Actual counts are printed by test_cases_per_op.
MIN_CASES_PER_OP: dict[str, int] = {
    "Conv": 18, "MaxPool": 15, "AveragePool": 16, "BatchNormalization": 7, "MatMul": 8, "Gemm": 14,
    "Relu": 2, "Sigmoid": 5, "Tanh": 5, "Exp": 32, "Log": 16, "Sqrt": 3, "Neg": 6,
    "Add": 9, "Sub": 32, "Mul": 6, "Div": 17, "Softmax": 11, "LogSoftmax": 10,
    "Reshape": 11, "Transpose": 10, "Flatten": 11, "ReduceSum": 42, "ReduceMean": 10, "ReduceMax": 36,
    "GlobalAveragePool": 2, "GlobalMaxPool": 2, "LeakyRelu": 5, "Sum": 4, "Mean": 3, "Concat": 13, "Pad": 8,
    "Slice": 9, "Squeeze": 5, "Unsqueeze": 9,
    # the CNN-zoo ops of issue 13, and the ops taking int/bool values
    "ConvTranspose": 12, "LRN": 2, "LayerNormalization": 19, "Abs": 2, "Erf": 1, "HardSwish": 1, "HardSigmoid": 4,
    "Gelu": 4, "Clip": 10, "Pow": 9, "Where": 10, "Max": 7, "Min": 7, "ReduceMin": 8, "Split": 19,
    "Equal": 10, "Less": 16, "LessOrEqual": 8, "Greater": 8, "GreaterOrEqual": 8, "ArgMax": 8, "ArgMin": 8,
    "Expand": 2, "Dropout": 4, "Not": 3, "Swish": 1,
}


def run_counts() -> tuple[Counter, Counter]:
    """(cases run per covered ONNX op, cases skipped per covered ONNX op); a case counts once for
    each covered op its graph uses."""
    run, skipped = Counter(), Counter()
    for case in CASES:
        for op in case.covered_ops:
            (skipped if SKIP_REASONS[case.name] else run)[op] += 1
    return run, skipped


def test_cases_per_op() -> None:
    run, skipped = run_counts()
    lines = [f"{'ONNX op':<20}{'run':>5}{'skipped':>9}"]
    lines += [f"{op:<20}{run[op]:>5}{skipped[op]:>9}" for op in COVERED_OPS]
    n_skipped = sum(1 for r in SKIP_REASONS.values() if r)
    lines.append(f"{len(CASES)} ONNX cases: {len(CASES) - n_skipped} run, {n_skipped} skipped")
    print("\n" + "\n".join(lines))
    short = {op: (run[op], n) for op, n in MIN_CASES_PER_OP.items() if run[op] < n}
    assert not short, f"ONNX ops with fewer cases run than expected (run, minimum): {short}"
    assert set(MIN_CASES_PER_OP) == set(COVERED_OPS)


def test_skip_lists_are_current() -> None:
    """Every SKIPS and IGNORED_OUTPUTS entry still names a case, so none is stale."""
    names = [c.name for c in CASES]
    stale = [p for p in SKIPS if not fnmatch.filter(names, p)]
    stale += [n for n in IGNORED_OUTPUTS if n not in names]
    assert not stale, f"entries naming no ONNX case: {stale}"


def test_device_cases_record_int_and_bool_calls_exactly():
    """The conformance suite's ONNX-derived cases include the calls on int32/int64/bool data (Equal of
    int32 inputs, Not of bool ones, Where with a bool cond and int64 values, ReduceMax of bool), with
    those inputs in their own dtype (compared exactly), and the ops whose ONNX nodes translate to them
    (Squeeze, Unsqueeze, Swish). not_equal (ONNX has no NotEqual: Not(Equal) is equal) and
    adaptive_avg_pool2d (no ONNX op; GlobalAveragePool is mean) have none."""
    from opdispatch_conformance.onnx_cases import conformance_cases
    from opdispatch_conformance.runner import run_case

    cases = conformance_cases()
    by_op = Counter(c.op for c in cases)
    assert {op: by_op[op] >= 1 for op in ("equal", "where", "squeeze", "unsqueeze", "silu", "max")} == \
        dict.fromkeys(("equal", "where", "squeeze", "unsqueeze", "silu", "max"), True), by_op
    fixed = {(c.op, i.dtype) for c in cases for i in c.inputs if i is not None and i.dtype}
    assert {("equal", "int32"), ("equal", "bool"), ("where", "bool"), ("where", "int64"), ("max", "bool")} <= fixed
    where_int = next(c for c in cases if c.op == "where" and any(i.dtype == "int64" for i in c.inputs))
    for dev in ["numpy:0"] + (["opencl:0"] if od.Device("opencl:0") in od.devices() else []):
        for mode in ("eager", "graph"):
            res = run_case(where_int, od.Device(dev), "float32", mode)
            assert res.status == "passed", res  # int64 values: compared exactly (tolerance.compare_exact)
