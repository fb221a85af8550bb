"""The suite's side-effect, layout and special-value checks: what each catches, and how it reports it."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pytest

import opdispatch as od
import opdispatch_numpy.plugin as numpy_plugin
from fake_backends import make_plugin
from opdispatch.backend import DeviceInfo, Kernel
from opdispatch.cli import main
from opdispatch_conformance.cases import LAYOUTS, Case, In, case_from_json, grid_cases, layout_cases, special_cases
from opdispatch_conformance.cases.base import EDGES, NONFINITE, SPECIALS, as_layout, special
from opdispatch_conformance.gradients import gradient_cases
from opdispatch_conformance.mutants import NumpyVariant
from opdispatch_conformance.runner import FAILED, PASSED, History, changed, run_case, run_cases
from opdispatch_conformance.suite import collect_cases
from opdispatch_conformance.tolerance import bound, compare

F32 = ("float32",)


def _variant(name, **kernels):
    od.register_plugin(NumpyVariant(name, kernels))
    return od.Device(f"{name}:0")


# -- inputs must come back unchanged -------------------------------------------------------------


def test_a_kernel_that_writes_into_its_input_fails_naming_the_input(clean_registry):
    def mul_into_b(a, b):
        return np.multiply(a, b, out=b)

    dev = _variant("inplace", mul=mul_into_b)
    res = run_case(Case("mul", (In((2, 3)), In((2, 3)))), dev, "float32")
    assert res.status == FAILED
    assert "input 'b' was modified by the call on the device" in res.message
    assert "input 'a'" not in res.message
    assert "first at index (0, 0): was " in res.message


def test_a_host_array_changed_through_a_backend_that_does_not_copy_is_named(clean_registry):
    def relu_in_place(x):
        return np.maximum(x, x.dtype.type(0), out=x)

    kernels = [Kernel("relu", relu_in_place, F32)]
    od.register_plugin(make_plugin("nocopy", kernels, devices=[DeviceInfo(index=0, dtypes=F32)],
                                   to_numpy=lambda d: d, from_numpy=lambda a: a))
    res = run_case(Case("relu", (In((4, 5)),)), od.Device("nocopy:0"), "float32")
    assert res.status == FAILED
    assert "input 'x' was modified by the call on the device" in res.message
    assert "the host array passed as input 'x' was modified" in res.message


def test_an_input_that_does_not_read_back_as_created_fails(clean_registry):
    od.register_plugin(make_plugin("lossy", [Kernel("neg", np.negative, F32)], devices=[DeviceInfo(index=0, dtypes=F32)],
                                   to_numpy=lambda d: np.array(d, copy=True),
                                   from_numpy=lambda a: np.where(np.isnan(a), 0, a).astype(a.dtype)))
    res = run_case(Case("neg", (special(5, 4, pool=NONFINITE),), source="special"), od.Device("lossy:0"), "float32")
    assert res.status == FAILED and "reads back from the device different from the array it was created from" \
        in res.message


def test_correct_kernels_pass_the_input_checks_in_graph_mode_too():
    for case in [c for c in grid_cases() if c.op in ("relu", "conv2d", "batch_norm", "concat")][:12]:
        assert run_case(case, od.Device("numpy:0"), "float32", "graph").status == PASSED, case.name


# -- outputs must not change after later calls ---------------------------------------------------


_SHARED: dict = {}


def _add_reusing(a, b):
    out = _SHARED.setdefault(np.broadcast_shapes(a.shape, b.shape), np.empty(np.broadcast_shapes(a.shape, b.shape),
                                                                             np.result_type(a, b)))
    return np.add(a, b, out=out)


def test_a_reused_output_buffer_fails_the_next_call_naming_both_cases(clean_registry, capsys):
    _SHARED.clear()
    dev = _variant("reuse", add=_add_reusing)
    grid = [c for c in grid_cases() if c.op == "add"]
    first, second = next((a, b) for a, b in zip(grid, grid[1:]) if a.inputs[0].shape == b.inputs[0].shape == (2, 3))
    results = {r.case: r for r in run_cases([first, second], dev, ["float32"])}
    assert results[first.name].status == PASSED  # nothing wrong with it when it ran
    bad = results[second.name]
    assert bad.status == FAILED
    assert f"the output of the earlier call {first.name} [float32] changed after this call" in bad.message
    assert "reuses or aliases its output buffers" in bad.message
    argv = shlex.split(bad.repro)
    assert argv[argv.index("--only") + 1] == first.name and argv[-1] == second.name
    _SHARED.clear()  # the reproduction, run again, shows the same failure
    assert main(argv[1:]) == 1
    assert f"FAILED {second.name} [float32]: the output of the earlier call {first.name}" in capsys.readouterr().out


def test_a_buffer_reused_per_shape_is_caught_across_cases_of_other_shapes(clean_registry):
    _SHARED.clear()
    dev = _variant("reuse", add=_add_reusing)
    cases = [Case("add", (In((2, 3)), In((2, 3))), seed=1), Case("add", (In((4,)), In((4,))), seed=2),
             Case("add", (In((2, 3)), In((1, 3))), seed=3)]
    results = run_cases(cases, dev, ["float32"])
    failed = [r for r in results if r.status == FAILED]
    assert [r.case for r in failed] == [cases[2].name] and cases[0].name in failed[0].message


def test_each_change_is_reported_once():
    history = History()
    dev = od.Device("numpy:0")
    a, b = od.tensor(np.ones(3, np.float32)), od.tensor(np.ones(3, np.float32))
    history.keep(Case("relu", (In((3,)),), seed=1), dev, "float32", [a], [np.zeros(3, np.float32)])  # "changed"
    case = Case("relu", (In((3,)),), seed=2)
    problems, concerned = history.recheck(case, dev, "float32", ((3,),))
    assert len(problems) == 1 and concerned[0].case.seed == 1 and concerned[0].dtype == "float32"
    assert history.recheck(case, dev, "float32", ((3,),)) == ([], [])
    history.keep(case, dev, "float32", [b], [np.ones(3, np.float32)])
    assert history.recheck(Case("relu", (In((3,)),), seed=3), dev, "float32", ((3,),)) == ([], [])


def test_changed_compares_bits():
    x = np.array([0.0, np.nan, 1.0], np.float32)
    assert changed(x, x.copy()) == ""  # NaN equals itself bit for bit
    y = x.copy()
    y[0] = -0.0
    assert "first at index (0,): was 0.0, now -0.0" in changed(x, y)
    assert "was float32[3], now float32[2]" in changed(x, x[:2])
    assert changed(np.float64(2.0) * np.ones(()), np.ones(())) == "1 of 1 elements, first at index (): was 2.0, now 1.0"


# -- the reference rounded to the case's dtype ------------------------------------------------------


def _exp_case(values, dtype):
    x = np.asarray(values, dtype)
    with np.errstate(over="ignore"):
        got = np.exp(x)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64))
    return got, ref, bound(dtype, 1, 4.0, [ref])


def test_exp_overflowing_in_float32_expects_inf_and_rejects_nan():
    got, ref, tol = _exp_case([100.0, 88.72, 88.73, -100.0, 1.0, 1e4, -1e4], "float32")
    assert np.isinf(got[0]) and np.isfinite(ref[0])
    cmp = compare(got, ref, tol)
    assert cmp.ok, cmp.problem
    nan = got.copy()
    nan[0] = np.nan
    cmp = compare(nan, ref, tol)
    assert not cmp.ok and "NaN mismatch at index (0,)" in cmp.problem and "rounded to the dtype" in cmp.problem
    wrong_sign = got.copy()
    wrong_sign[2] = -np.inf
    assert not compare(wrong_sign, ref, tol).ok
    early = got.copy()
    early[1] = np.inf  # exp(88.72) = 3.4e38 is finite in float32
    assert "non-finite values where the reference is finite" in compare(early, ref, tol).problem
    almost = got.copy()
    almost[0] = np.finfo(np.float32).max  # finite where the rounded reference is inf: too far from 2.7e43
    assert not compare(almost, ref, tol).ok


def test_the_largest_finite_value_passes_where_the_reference_barely_overflows():
    big = float(np.finfo(np.float32).max)
    ref = np.array([big * (1 + 1e-7)])  # rounds to inf in float32, within tolerance of FLT_MAX
    tol = bound("float32", 1, 1.0, [ref])
    assert compare(np.array([np.inf], np.float32), ref, tol).ok
    assert compare(np.array([big], np.float32), ref, tol).ok
    near = np.array([big * (1 - 1e-7)])  # finite in float32, within tolerance of overflowing
    assert compare(np.array([np.inf], np.float32), near, tol).ok


def test_the_magnitude_behind_atol_counts_only_values_the_dtype_can_hold():
    ref = np.array([1.0, 2.7e43])
    assert bound("float32", 1, 1.0, [ref]).atol == bound("float32", 1, 1.0, [np.array([1.0])]).atol
    assert bound("float64", 1, 1.0, [ref]).atol > 1e28
    assert compare(np.array([1.5, np.inf], np.float32), ref, bound("float32", 1, 1.0, [ref])).ok is False


def test_float64_cases_compare_unrounded():
    got, ref, tol = _exp_case([100.0, 710.0, 1.0], "float64")
    assert compare(got, ref, tol).ok  # exp(710) is inf in float64 as well
    assert not compare(np.array([np.inf, np.inf, np.e]), ref, tol).ok


# -- special values -------------------------------------------------------------------------------


def test_special_inputs_hold_every_pool_value_deterministically():
    recipe = special(5, 13)
    case = Case("exp", (recipe,))
    a, b = case.make_inputs("float64")[0], case.make_inputs("float64")[0]
    assert changed(a, b) == ""
    flat = a.reshape(-1)
    for v in SPECIALS:
        hits = np.isnan(flat) if math.isnan(v) else (flat == v) & (np.signbit(flat) == (math.copysign(1, v) < 0))
        assert hits.any(), v
    assert np.isfinite(flat).sum() >= flat.size // 2
    f32 = case.make_inputs("float32")[0]
    assert f32.dtype == np.float32 and np.isinf(np.asarray(special(40, pool=(1e300,)).make(
        np.random.default_rng(0), np.dtype("float32")))).sum() == 10


def test_special_cases_reproduce_from_one_line_of_json(capsys):
    case = next(c for c in special_cases() if c.inputs[0].values == NONFINITE)
    text = case.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert case_from_json(text) == case and case_from_json(text).name == case.name
    res = run_case(case, od.Device("numpy:0"), "float32")
    assert res.status == PASSED, res.message
    assert main(shlex.split(res.repro)[1:]) == 0


def test_every_op_has_special_value_and_view_cases():
    from opdispatch.ops import OPS

    assert {c.op for c in special_cases()} == set(OPS)
    views = layout_cases()
    assert {c.op for c in views} == set(OPS)
    assert {c.layout for c in views} == set(LAYOUTS) - {"contiguous"}
    assert all(c.source == "special" for c in special_cases())
    # gradients are checked on the contiguous, finite grid and random cases only
    assert not [c for c in gradient_cases(collect_cases(onnx=False)) if c.source == "special" or c.layout != "contiguous"]


def test_the_transposed_view_is_of_a_matrix_wherever_the_op_has_one():
    """A 1-d array's transpose is itself: ops with a single matrix grid case (relu, tanh, exp, ...) must
    still get it as their transposed view, not lose it to the strided or reversed one."""
    def has_matrix(case):
        return any(i is not None and len(i.shape) >= 2 for i in case.inputs)

    with_matrix = {c.op for c in grid_cases() if has_matrix(c)}
    transposed = {c.op: c for c in layout_cases() if c.layout == "transposed"}
    assert {"relu", "tanh", "exp"} <= with_matrix
    assert [transposed[op].name for op in sorted(with_matrix) if not has_matrix(transposed[op])] == []


def test_sizes_past_chunks_and_tiles_are_in_the_grid():
    grid = grid_cases()

    def has(op, pred):
        return any(c.op == op and pred([i.shape for i in c.inputs if i is not None]) for c in grid)

    for op in ("conv2d", "max_pool2d", "avg_pool2d", "conv2d_backward_input", "max_pool2d_backward"):
        for n in (5, 7, 17):
            assert has(op, lambda s, n=n: any(len(x) == 4 and x[0] == n for x in s)), (op, n)
        assert has(op, lambda s: any(len(x) == 4 and x[3] > 64 for x in s)), op
    assert has("matmul", lambda s: s[0][-1] > 64 and s[0][0] > 64 and s[1][-1] > 64)
    for op in ("sum", "max", "softmax", "log_softmax"):
        assert has(op, lambda s: max(s[0], default=0) > 64), op
    for op in ("relu", "sigmoid", "add"):
        assert has(op, lambda s: int(np.prod(s[0])) >= 1000), op


# -- inputs passed as views ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [lay for lay in LAYOUTS if lay != "contiguous"])
def test_views_hold_the_same_values_in_another_layout(layout):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    v = as_layout(a, layout)
    assert changed(a, np.array(v)) == "" and not v.flags.c_contiguous and v.base is not None
    if layout == "reversed":
        assert v.strides[-1] < 0
    if layout == "strided":
        assert v.strides[-1] == 2 * a.itemsize
    assert as_layout(np.float32(1) * np.ones(()), layout).shape == ()


def _raw_buffer(a):
    """A from_numpy that copies the memory a view looks into as if it were C-contiguous (the bug)."""
    if a.flags.c_contiguous or a.base is None:
        return np.array(a, copy=True)
    return np.array(np.ascontiguousarray(a.base).reshape(-1)[:a.size].reshape(a.shape), copy=True)


def test_a_backend_that_ignores_strides_fails_the_view_cases_only(clean_registry):
    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op in ("add", "matmul")]
    od.register_plugin(make_plugin("raw", kernels, devices=[DeviceInfo(index=0)], from_numpy=_raw_buffer,
                                   to_numpy=lambda d: np.array(d, copy=True)))
    cases = [c for c in collect_cases(["add", "matmul"], random_per_op=2, onnx=False) if c.source != "special"]
    results = run_cases(cases, od.Device("raw:0"), ["float32"])
    failed = {r.case for r in results if r.status == FAILED}
    views = {c.name for c in cases if c.layout != "contiguous"}
    assert failed and failed <= views
    assert len(failed) >= len(views) - 1  # a view of one element looks like a contiguous one


def test_view_results_must_match_the_contiguous_ones(clean_registry):
    calls = []

    def add_unstable(a, b):  # right the first time, off the second: only a second run shows it
        calls.append(1)
        return np.add(a, b) * (1 if len(calls) % 2 else 1.01)

    dev = _variant("unstable", add=add_unstable)
    res = run_case(Case("add", (In((3, 4)), In((3, 4)))).with_layout("reversed"), dev, "float32")
    assert res.status == FAILED
    assert "with the inputs passed as reversed views differs from the output with the same inputs contiguous" \
        in res.message
