"""od.function: tracing, the signature cache, IR printing, errors at the user's line, tapes inside graphs."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

import opdispatch as od
from opdispatch.graph.trace import TracedTensor

RNG = np.random.default_rng(0)


def t(*shape, dtype="float32"):
    return od.tensor(RNG.standard_normal(shape).astype(dtype))


def _line_of(fn, marker: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, text in enumerate(lines) if marker in text)


def test_function_matches_eager_and_caches_per_signature():
    calls = []

    @od.function
    def step(x, w):
        calls.append(1)
        return od.relu(od.conv2d(x, w, padding="SAME"))

    x, w = t(2, 3, 8, 8), t(4, 3, 3, 3)
    want = od.relu(od.conv2d(x, w, padding="SAME")).numpy()
    np.testing.assert_array_equal(step(x, w).numpy(), want)
    np.testing.assert_array_equal(step(x, w).numpy(), want)
    assert len(calls) == 1  # traced once, then run as a graph
    step(t(1, 3, 8, 8), w)
    step(x.numpy().astype("float64"), w.numpy().astype("float64"))
    assert len(calls) == 3  # a new shape and a new dtype retrace


def test_python_control_flow_retraces_on_python_values():
    @od.function
    def f(x, n, scale=1.0):
        for _ in range(n):
            x = od.relu(x) * scale
        return x

    x = t(3, 4)
    np.testing.assert_allclose(f(x, 2, scale=2.0).numpy(), (od.relu(od.relu(x) * 2.0) * 2.0).numpy())
    assert f.graph(x, 3, scale=2.0).ops().count("relu") == 3
    assert f.graph(x, 1, scale=2.0).ops().count("relu") == 1


def test_nested_outputs_and_static_outputs():
    @od.function
    def f(x):
        return {"y": od.neg(x), "pair": (x, 3)}

    x = t(2)
    out = f(x)
    np.testing.assert_array_equal(out["y"].numpy(), -x.numpy())
    np.testing.assert_array_equal(out["pair"][0].numpy(), x.numpy())
    assert out["pair"][1] == 3


@pytest.mark.parametrize("leak", ["bool", "float", "numpy", "asarray", "int"])
def test_data_dependent_control_flow_fails_at_trace_time(leak):
    @od.function
    def f(x):
        s = od.sum(x)
        if leak == "bool":
            if s:  # LEAK-bool
                return x
        elif leak == "float":
            return x * float(s)  # LEAK-float
        elif leak == "numpy":
            return s.numpy()  # LEAK-numpy
        elif leak == "asarray":
            return np.asarray(s)  # LEAK-asarray
        else:
            return x * int(s)  # LEAK-int
        return x

    with pytest.raises(od.GraphTraceError, match="data-dependent control flow is not allowed") as info:
        f(t(3))
    line = _line_of(f._fn, f"LEAK-{leak}")
    assert f"{__file__}:{line}" in str(info.value)
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (__file__, line)


def test_bad_op_call_fails_at_trace_time_at_the_user_line():
    @od.function
    def f(x, w):
        y = od.relu(x)
        return od.conv2d(y, w)  # BAD-CALL

    with pytest.raises(od.ShapeError, match="argument 'w'") as info:
        f(t(2, 3, 8, 8), t(4, 5, 3, 3))
    line = _line_of(f._fn, "BAD-CALL")
    assert f"{__file__}:{line}" in str(info.value)
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (__file__, line)


def test_graph_prints_ops_shapes_dtypes_devices_and_user_lines():
    @od.function(passes={"fuse": False})
    def f(x):
        return od.sum(od.relu(x), axis=1)  # PRINTED

    g = f.graph(t(2, 3))
    text = str(g)
    line = _line_of(f._fn, "PRINTED")
    assert "relu(%0)" in text and "sum(" in text and "axis=(1,)" in text
    assert "float32[2,3] @numpy:0" in text and "float32[2] @numpy:0" in text
    assert f"test_graph.py:{line}" in text
    assert all(node.sources[0].line == line for node in g.nodes)


def test_graph_is_immutable():
    @od.function
    def f(x):
        return od.relu(x)

    g = f.graph(t(2))
    with pytest.raises(Exception):
        g.nodes = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        g.values[99] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        g.nodes[0].attrs["x"] = 1  # type: ignore[index]


def test_traced_tensors_are_symbolic():
    seen = []

    @od.function
    def f(x):
        seen.append(x)
        return x + 1.0

    f(t(2))
    assert isinstance(seen[0], TracedTensor) and "traced tensor" in repr(seen[0])


def test_gradient_tape_inside_a_traced_function():
    x, w = t(2, 3, 8, 8), t(4, 3, 3, 3)

    def step(x, w):
        with od.GradientTape() as tape:
            tape.watch(w)
            loss = od.mean(od.relu(od.conv2d(x, w, padding="SAME")))
        return loss, tape.gradient(loss, w)

    graph_step = od.function(step)
    loss, gw = graph_step(x, w)
    want_loss, want_gw = step(x, w)
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gw.numpy(), want_gw.numpy(), rtol=1e-5, atol=1e-6)
    ops = graph_step.graph(x, w).ops()
    assert "conv2d_backward_weight" in ops and "relu_backward" in ops
    assert "conv2d_backward_input" not in ops  # x needs no gradient: dead code


def test_eager_tape_around_a_function_sees_its_ops():
    f = od.function(lambda x: od.sum(x * x))
    x = t(3)
    with od.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 2 * x.numpy(), rtol=1e-6)


def test_kernel_failure_at_run_time_names_node_op_and_user_line(clean_registry):
    from fake_backends import make_broken

    od.register_plugin(make_broken("raising-kernel"))

    @od.function
    def f(x):
        return od.relu(x)  # RUNTIME-FAIL

    x = od.tensor(np.ones(3), device="broken-raising-kernel:0")
    with pytest.raises(od.KernelError) as info:
        f(x)
    line = _line_of(f._fn, "RUNTIME-FAIL")
    msg = str(info.value)
    assert "relu" in msg and "node %" in msg and f"{__file__}:{line}" in msg


def test_constant_captured_from_closure():
    c = od.tensor(np.arange(3.0, dtype="float32"))

    @od.function
    def f(x):
        return x + c

    x = t(3)
    np.testing.assert_array_equal(f(x).numpy(), x.numpy() + c.numpy())


def test_unknown_pass_switch_is_an_error():
    with pytest.raises(od.InvalidArgumentError, match="unknown pass 'fusion'"):
        od.function(lambda x: x, passes={"fusion": False})


def test_batch_norm_training_outputs_and_explicit_copy_nodes():
    @od.function
    def f(x, m, v):
        return od.batch_norm(x, m, v, training=True)

    x, m, v = t(4, 3, 2, 2), t(3), od.tensor(np.ones(3, dtype="float32"))
    got = f(x, m, v)
    want = od.batch_norm(x, m, v, training=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
