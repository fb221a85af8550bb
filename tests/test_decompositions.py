"""Decompositions: an op defined by other ops runs, trains and traces on a device without a kernel for it.

The ``prims`` test backend (tests/fake_backends.py) has kernels for a small primitive set only
(elementwise, reductions, movement, matmul, the loss); convolutions, pooling, batch norm, softmax and
the rest run as their decompositions there, eagerly, in graphs and under GradientTape.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import opdispatch as od
from fake_backends import PRIMITIVES, make_primitive_backend
from opdispatch import recording
from opdispatch.ops import OPS
from opdispatch.tensor import F
from opdispatch_conformance.cases import grid_cases
from opdispatch_conformance.runner import PASSED, UNSUPPORTED, as_args
from opdispatch_conformance.suite import collect_cases, run_device

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from cnn import init_params, train_step  # noqa: E402

DECOMPOSED = sorted(op for op, s in OPS.items() if s.decomposition is not None)
PRIMS = od.Device("prims:0")


@pytest.fixture
def prims(clean_registry):
    status = od.register_plugin(make_primitive_backend())
    assert status.status == "loaded", status
    return PRIMS


class _OpLog:
    """A recorder that keeps the name of every op called while it is pushed."""

    def __init__(self) -> None:
        self.ops: list[str] = []

    def record(self, schema, inputs, attrs, outputs) -> None:
        self.ops.append(schema.name)


@pytest.mark.parametrize("op", DECOMPOSED)
def test_a_decomposition_calls_only_the_ops_it_declares(op):
    schema = OPS[op]
    called: set[str] = set()
    cases = [c for c in grid_cases() if c.op == op]
    assert cases, f"{op} has no grid case"
    for case in cases:
        arrays = case.make_inputs("float64")
        if any(a is not None and a.dtype.kind != "f" for a in arrays[:1]):
            continue  # int values: dispatch decomposes only where every op used has a kernel for the dtype
        tensors = [None if a is None else od.tensor(a) for a in arrays]
        metas = [None if t is None else od.TensorMeta(t.shape, t.dtype) for t in tensors]
        _, kattrs = schema.infer(op, metas, schema.normalize(case.attrs))
        log = _OpLog()
        token = recording.push(log)
        try:
            schema.decomposition.fn(F, *tensors, **kattrs)
        finally:
            recording.pop(token)
        called.update(log.ops)
    assert called <= set(schema.decomposition.uses), f"{op} calls {sorted(called - set(schema.decomposition.uses))}"


def test_ops_without_a_decomposition_are_the_primitives_or_backward_kernels():
    # a backend implementing PRIMITIVES runs every op but the backward ops no decomposition covers
    missing = {op for op in OPS if op not in PRIMITIVES and OPS[op].decomposition is None}
    assert missing == {"max_pool2d_backward", "batch_norm_backward"}, missing


def test_the_primitive_backend_runs_every_decomposable_op_as_its_decomposition(prims):
    run = run_device(prims, collect_cases(DECOMPOSED, random_per_op=3, onnx=False), out=None, gradients="no")
    results = [r for r in run["results"] if not _int_min(r)]
    assert results and [r for r in results if r.status != PASSED] == []
    assert {r.provider for r in results} == {"decomposed"}
    assert {r.op for r in results} == set(DECOMPOSED)
    # min of int and bool tensors needs a kernel: its decomposition -max(-x) is float-only (neg is a
    # float op, and -INT_MIN overflows), and the device says so
    int_min = [r for r in run["results"] if _int_min(r)]
    assert int_min and all(r.status == UNSUPPORTED and "decomposition needs neg" in r.message for r in int_min)


def _int_min(result) -> bool:
    return result.op == "min" and any(f"{d}(" in result.case or f"{d}-array" in result.case
                                      for d in ("int32", "int64", "bool"))


def test_gradients_flow_through_decompositions(prims):
    ops = ["conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "softmax", "log_softmax", "sigmoid", "mean"]
    run = run_device(prims, collect_cases(ops, random_per_op=2, onnx=False), out=None, gradients="only")
    results = run["results"]
    assert results and [(r.case, r.message) for r in results if r.status != PASSED] == []


def test_explain_names_the_decomposition_and_its_kernels(prims):
    x = od.tensor(np.ones((1, 2, 6, 6), np.float32), device=prims)
    plan = od.explain("conv2d", x, np.ones((3, 2, 3, 3), np.float32), padding="SAME")
    assert plan.how == "decomposition" and plan.supported
    assert {p.op for p in plan.parts} == {"pad", "slice", "reshape", "concat", "matmul"}
    assert all(p.how == "kernel" and p.provider == "prims" for p in plan.parts)
    assert "decomposed into" in str(plan) and "slice x9: kernel of 'prims'" in str(plan)
    assert od.explain("conv2d", x, np.ones((3, 2, 3, 3), np.float32), device="numpy:0").how == "kernel"


def test_graph_nodes_say_which_op_they_decompose(prims):
    x = od.tensor(np.ones((1, 2, 6, 6), np.float32), device=prims)
    w = od.tensor(np.ones((3, 2, 3, 3), np.float32), device=prims)
    step = od.function(lambda x, w: od.relu(od.conv2d(x, w)))
    g = step.graph(x, w)
    assert {n.decomposed_from for n in g.nodes if n.op != "relu"} == {"conv2d"}
    assert "decomposed[conv2d]" in str(g) and "[decomposition of conv2d]" in g.placement()
    np.testing.assert_allclose(step(x, w).numpy(), od.relu(od.conv2d(x.to("numpy:0"), w.to("numpy:0"))).numpy(),
                               rtol=1e-5)


def test_a_loaded_graph_is_decomposed_when_it_is_lowered_for_the_device(prims, tmp_path):
    args = [np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in ((2, 3, 7, 7), (4, 3, 3, 3))]
    step = od.function(lambda x, w: od.max_pool2d(od.conv2d(x, w, padding=1), 2))
    step.graph(*[od.tensor(a) for a in args]).save(str(tmp_path / "g.json"))  # traced on numpy:0: conv2d nodes
    loaded = od.load_graph(str(tmp_path / "g.json"))
    assert "conv2d" in loaded.ops()
    got = loaded(*[od.tensor(a, device=prims) for a in args])
    want = step(*[od.tensor(a) for a in args])
    assert got.device == prims
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def _train(device: str, steps: int, batch_norm: bool, graph: bool) -> dict:
    rng = np.random.default_rng(0)
    with od.device(device):
        params, state = init_params(rng, image_hw=(8, 8), hidden=32, batch_norm=batch_norm)
        opt = od.SGD(params, lr=0.05, momentum=0.9)
        x = od.tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
        labels = rng.integers(0, 10, 16)
        if graph:
            names = list(params)

            @od.function
            def grads_of(params, state, x, labels):
                from cnn import loss_fn

                with od.GradientTape() as tape:
                    tape.watch(list(params.values()))
                    loss, new_state = loss_fn(params, state, x, labels)
                return loss, dict(zip(names, tape.gradient(loss, [params[n] for n in names]))), new_state

            for _ in range(steps):
                _, grads, state = grads_of(opt.params, state, x, od.tensor(labels))
                opt.step(grads)
        else:
            for _ in range(steps):
                _, state = train_step(opt, state, x, labels)
        return {n: t.numpy() for n, t in opt.params.items()}


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
def test_the_example_cnn_trains_on_a_primitive_only_backend_as_on_numpy(prims, graph, batch_norm):
    want = _train("numpy:0", 3, batch_norm, graph)
    got = _train("prims:0", 3, batch_norm, graph)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-4, atol=2e-5, err_msg=name)
    # and the parameters did move
    start = _train("numpy:0", 0, batch_norm, graph)
    assert any(not np.allclose(start[n], want[n]) for n in want)


def test_decompositions_are_invisible_on_devices_with_kernels():
    x = od.tensor(np.ones((1, 2, 6, 6), np.float32))
    g = od.function(lambda x: od.max_pool2d(od.relu(x), 2)).graph(x)
    assert g.ops() == ["relu", "max_pool2d"] and not any(n.decomposed_from for n in g.nodes)
    assert od.explain("conv2d", x, np.ones((3, 2, 3, 3), np.float32)).how == "kernel"


def test_a_variadic_op_takes_its_inputs_as_one_list():
    # a variadic op's case inputs are flat; the function takes them as one list
    case = next(c for c in grid_cases() if c.op == "concat")
    arrays = case.make_inputs("float32")
    out = od.op_function("concat")(*as_args(OPS["concat"], arrays), **case.attrs)
    np.testing.assert_array_equal(out.numpy(), np.concatenate(arrays, axis=case.attrs["axis"]))


def test_a_graph_traced_on_a_decomposing_device_saves_and_loads_with_its_labels(prims, tmp_path):
    x = od.tensor(np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32), device=prims)
    w = od.tensor(np.random.default_rng(2).standard_normal((3, 2, 3, 3)).astype(np.float32), device=prims)
    step = od.function(lambda x, w: od.conv2d(x, w, padding=1))
    g = step.graph(x, w)
    assert "concat" in g.ops()  # im2col: a variadic node
    g.save(str(tmp_path / "g.json"))
    loaded = od.load_graph(str(tmp_path / "g.json"))
    assert [n.decomposed_from for n in loaded.nodes] == [n.decomposed_from for n in g.nodes]
    np.testing.assert_allclose(loaded(x, w).numpy(), step(x, w).numpy(), rtol=1e-6)


def test_a_graph_with_concat_saves_and_loads(tmp_path):
    a, b = od.tensor(np.ones((2, 3), np.float32)), od.tensor(np.zeros((1, 3), np.float32))
    step = od.function(lambda a, b: od.concat([a, b, a], axis=0))
    step.graph(a, b).save(str(tmp_path / "c.json"))
    np.testing.assert_array_equal(od.load_graph(str(tmp_path / "c.json"))(a, b).numpy(), step(a, b).numpy())


@pytest.mark.parametrize("op", ["sigmoid", "silu"])
def test_gradients_of_decomposed_sigmoid_stay_finite_at_the_extremes(prims, op):
    x = np.array([-1000.0, -104.0, -89.0, -20.0, 0.0, 20.0, 89.0, 1000.0], np.float32)
    grads = {}
    for dev in ("numpy:0", "prims:0"):
        t = od.tensor(x, device=dev)
        with od.GradientTape() as tape:
            tape.watch(t)
            y = od.sum(getattr(od, op)(t))
        grads[dev] = tape.gradient(y, t).numpy()
    assert np.isfinite(grads["prims:0"]).all(), grads
    np.testing.assert_allclose(grads["prims:0"], grads["numpy:0"], rtol=1e-5, atol=1e-6)
