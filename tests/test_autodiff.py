"""GradientTape: every op's gradient against float64 central finite differences, and the tape's rules."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch_conformance.cases import grid_cases

SECOND_ORDER = {op for op, s in OPS.items() if s.vjp is not None and op.endswith("_backward")} | {"broadcast_to"}
FORWARD_OPS = {op for op, s in OPS.items() if s.vjp is not None} - SECOND_ORDER  # every op with a gradient rule
BOOL_OUTPUT = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}  # no gradient flows
CASES = [c for c in grid_cases() if c.op in FORWARD_OPS - BOOL_OUTPUT
         and not any(i is not None and i.dtype in ("int32", "int64") for i in c.inputs)  # int values: no gradient
         # cast: float64 to float64 only (float32 rounding defeats finite differences; tests/test_tensor_protocols.py
         # checks astype's gradient through a float32 round trip)
         and not (c.op == "cast" and (c.attrs["dtype"] != "float64" or any(i.dtype for i in c.inputs)))]
PROBES = 5  # elements per input checked by finite differences


def _call(op, arrays, attrs):
    """``op`` on flat inputs (a variadic op's inputs passed as one list)."""
    fn = od.op_function(op)
    return fn(list(arrays), **attrs) if OPS[op].variadic else fn(*arrays, **attrs)


def _loss(op, arrays, attrs, weights):
    out = _call(op, arrays, attrs)
    outs = out if isinstance(out, tuple) else (out,)
    total = None
    for o, w in zip(outs, weights):
        term = od.sum(o * w)
        total = term if total is None else total + term
    return total


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_matches_finite_differences(case):
    arrays = case.make_inputs("float64")
    if case.op == "max_pool2d" or case.op == "max":
        arrays[0] = np.asarray(arrays[0] + np.arange(arrays[0].size).reshape(arrays[0].shape) * 1e-3)  # no ties
    rng = np.random.default_rng(case.seed + 1)
    outs = _call(case.op, arrays, case.attrs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    if not all(np.isfinite(o.numpy()).all() for o in outs):
        pytest.skip("the output is not finite (padding with -inf): finite differences are undefined")
    weights = [rng.standard_normal(o.shape) for o in outs]
    float_idx = [i for i, a in enumerate(arrays) if a is not None and a.dtype.kind == "f"]
    tensors = [None if a is None else od.tensor(a) for a in arrays]
    with od.GradientTape() as tape:
        tape.watch([tensors[i] for i in float_idx])
        loss = _loss(case.op, tensors, case.attrs, weights)
    grads = tape.gradient(loss, [tensors[i] for i in float_idx])
    for i, g in zip(float_idx, grads):
        assert g.shape == arrays[i].shape and g.dtype == np.float64 and g.device == od.Device("numpy:0")
        flat = arrays[i].reshape(-1)
        for j in rng.choice(flat.size, size=min(PROBES, flat.size), replace=False):
            h = 1e-6 * max(1.0, abs(flat[j]))
            plus, minus = [a.copy() if a is not None else None for a in arrays], \
                [a.copy() if a is not None else None for a in arrays]
            plus[i].reshape(-1)[j] += h
            minus[i].reshape(-1)[j] -= h
            fd = (float(_loss(case.op, plus, case.attrs, weights)) -
                  float(_loss(case.op, minus, case.attrs, weights))) / (2 * h)
            got = float(g.numpy().reshape(-1)[j])
            assert abs(got - fd) <= 1e-5 * max(1.0, abs(fd)), f"input {i} element {j}: tape {got}, FD {fd}"


def test_gradient_of_a_small_cnn_runs_on_the_forward_device():
    rng = np.random.default_rng(0)
    x = od.tensor(rng.standard_normal((2, 1, 8, 8)), dtype="float32")
    w = od.tensor(rng.standard_normal((4, 1, 3, 3)) * 0.3, dtype="float32")
    b = od.tensor(np.zeros(4), dtype="float32")
    wd = od.tensor(rng.standard_normal((64, 3)) * 0.1, dtype="float32")
    with od.GradientTape() as tape:
        tape.watch([w, b, wd])
        h = od.max_pool2d(od.relu(od.conv2d(x, w, b, padding="SAME")), 2)
        logits = od.matmul(od.flatten(h), wd)
        loss = od.softmax_cross_entropy(logits, np.array([0, 2]))
    gw, gb, gwd = tape.gradient(loss, [w, b, wd])
    assert [g.shape for g in (gw, gb, gwd)] == [(4, 1, 3, 3), (4,), (64, 3)]
    assert all(g.dtype == np.float32 and g.device == od.Device("numpy:0") for g in (gw, gb, gwd))


def test_unwatched_source_and_independent_target_are_named():
    x = od.tensor([1.0, 2.0])
    z = od.tensor([3.0])
    with od.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = od.sum(x * x)
    with pytest.raises(od.GradientError, match=r"source 0 \(shape \(1,\)\) was never watched"):
        tape.gradient(y, z)
    with od.GradientTape() as tape2:
        tape2.watch([x, z])
        y2 = od.sum(x)
    with pytest.raises(od.GradientError, match=r"does not depend on source 1 \(shape \(1,\)\)"):
        tape2.gradient(y2, [x, z])


def test_non_persistent_tape_is_single_use_and_persistent_is_not():
    x = od.tensor([1.0, 2.0])
    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(x * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2.0, 4.0])
    with pytest.raises(od.GradientError, match="already used"):
        tape.gradient(y, x)
    with od.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = od.sum(x * x)
        z = od.sum(od.exp(x))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(tape.gradient(z, x).numpy(), np.exp([1.0, 2.0]))


def test_output_gradients_and_list_in_list_out():
    x = od.tensor([1.0, 2.0, 3.0])
    with od.GradientTape() as tape:
        tape.watch(x)
        y = x * 2.0
    (g,) = tape.gradient(y, [x], output_gradients=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 0.0, -2.0])


def test_nested_tapes_give_second_derivatives():
    x = od.tensor([0.5, -1.0, 2.0])
    with od.GradientTape() as outer:
        outer.watch(x)
        with od.GradientTape() as inner:
            inner.watch(x)
            y = od.sum(x * x * x)
        g = inner.gradient(y, x)  # 3 x^2, recorded by the outer tape
        total = od.sum(g)
    h = outer.gradient(total, x)  # 6 x
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


def test_ops_outside_the_tape_are_not_recorded_and_fast_path_resumes():
    from opdispatch import recording

    x = od.tensor([1.0])
    with od.GradientTape() as tape:
        tape.watch(x)
    y = x + x
    assert recording.ACTIVE[0] == 0 and recording.active() == ()
    with pytest.raises(od.GradientError, match="does not depend"):
        tape.gradient(od.sum(y), x)


def test_gradients_nobody_asked_for_are_not_computed(clean_registry):
    import opdispatch_numpy.plugin as numpy_plugin
    from fake_backends import make_plugin
    from opdispatch.backend import DeviceInfo, Kernel

    def refuse(*args, **kwargs):
        raise RuntimeError("the input gradient was computed although only the weights need one")

    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op != "conv2d_backward_input"]
    od.register_plugin(make_plugin("lazy", kernels + [Kernel("conv2d_backward_input", refuse)],
                                   devices=[DeviceInfo(index=0)], to_numpy=lambda d: np.array(d, copy=True),
                                   from_numpy=lambda a: np.array(a)))
    rng = np.random.default_rng(0)
    with od.device("lazy:0"):
        x = od.tensor(rng.standard_normal((2, 1, 6, 6)))
        w = od.tensor(rng.standard_normal((3, 1, 3, 3)))
        wd = od.tensor(rng.standard_normal((3 * 36, 2)))
        with od.GradientTape() as tape:
            tape.watch([w, wd])
            loss = od.sum(od.matmul(od.flatten(od.conv2d(x, w, padding=1)), wd))
        gw, gwd = tape.gradient(loss, [w, wd])
    assert gw.shape == (3, 1, 3, 3) and gwd.shape == (108, 2)
    with od.device("lazy:0"), od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(od.conv2d(x, w))
    with pytest.raises(od.KernelError, match="only the weights"):
        tape.gradient(y, x)


BACKWARD_CASES = [c for c in grid_cases() if c.op in SECOND_ORDER]


@pytest.mark.parametrize("case", BACKWARD_CASES, ids=[c.name for c in BACKWARD_CASES])
def test_backward_ops_with_gradient_rules_match_finite_differences(case):
    from opdispatch import op_function

    arrays = case.make_inputs("float64")
    rng = np.random.default_rng(case.seed + 5)
    fn = op_function(case.op)
    out = fn(*arrays, **case.attrs)
    weights = rng.standard_normal(out.shape)
    # relu_backward(dy, x) is piecewise constant in x: only dy has a gradient
    idx = [0] if case.op == "relu_backward" else [i for i, a in enumerate(arrays) if a is not None]

    def loss(arrs):
        return od.sum(fn(*arrs, **case.attrs) * weights)

    tensors = [None if a is None else od.tensor(a) for a in arrays]
    with od.GradientTape() as tape:
        tape.watch([tensors[i] for i in idx])
        y = loss(tensors)
    grads = tape.gradient(y, [tensors[i] for i in idx])
    for i, g in zip(idx, grads):
        flat = arrays[i].reshape(-1)
        for j in rng.choice(flat.size, size=min(PROBES, flat.size), replace=False):
            h = 1e-6 * max(1.0, abs(flat[j]))
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[i].reshape(-1)[j] += h
            minus[i].reshape(-1)[j] -= h
            fd = (float(loss(plus)) - float(loss(minus))) / (2 * h)
            got = float(g.numpy().reshape(-1)[j])
            assert abs(got - fd) <= 1e-5 * max(1.0, abs(fd)), f"input {i} element {j}: tape {got}, FD {fd}"


def test_a_gradient_penalty_through_a_conv_is_differentiable():
    """d/dw of ||d loss/dx||^2 (nested tapes): the conv backward ops' own gradient rules at work."""
    rng = np.random.default_rng(4)
    x0, w0 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)) * 0.5

    def penalty(w_arr, want_grad=False):
        x, w = od.tensor(x0), od.tensor(w_arr)
        with od.GradientTape() as outer:
            outer.watch(w)
            with od.GradientTape() as inner:
                inner.watch(x)
                y = od.conv2d(x, w, padding=1, stride=(1, 2))
                loss = od.sum(y * y)
            gx = inner.gradient(loss, x)
            p = od.sum(gx * gx)
        return (p, outer.gradient(p, w)) if want_grad else p

    p, gw = penalty(w0, want_grad=True)
    flat = w0.reshape(-1)
    for j in rng.choice(flat.size, size=6, replace=False):
        plus, minus = w0.copy(), w0.copy()
        plus.reshape(-1)[j] += 1e-6
        minus.reshape(-1)[j] -= 1e-6
        fd = (float(penalty(plus)) - float(penalty(minus))) / 2e-6
        assert abs(float(gw.numpy().reshape(-1)[j]) - fd) <= 1e-5 * max(1.0, abs(fd))
