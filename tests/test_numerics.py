"""od.check_numerics(): the first op whose output gains a NaN or inf is named, with its device and the
user's line, in eager and graph mode and in backward passes (naming the forward op); nothing is
checked, and nothing costs, outside the block; NumPy's warnings from inside the library never leak."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import opdispatch as od
from opdispatch import recording

HERE = re.escape(__file__.rsplit("/", 1)[-1])


def _f32(*values):
    return od.tensor(np.array(values, np.float32))


def test_the_first_op_that_makes_an_inf_is_named_with_its_line():
    x = _f32(0.0, 1.0)
    with pytest.raises(od.NumericsError, match=rf"log: its output on numpy:0 has 1 inf though its inputs are "
                                               rf"finite at .*{HERE}:\d+ \(y = od.log\(x\)"):
        with od.check_numerics():
            y = od.log(x)  # noqa: F841


def test_values_that_arrive_with_nan_are_not_reported_again():
    x = _f32(np.nan, 1.0)
    with od.check_numerics():
        y = od.relu(x) * 2.0  # NaN in, NaN out: not this op's doing
    assert np.isnan(y.numpy()[0])


def test_a_graph_node_is_named_with_the_line_inside_the_function():
    def f(x, w):
        h = od.relu(od.conv2d(x, w))
        return od.log(h)

    x = od.tensor(np.random.default_rng(0).random((1, 1, 4, 4)).astype(np.float32))
    w = od.tensor(-np.ones((1, 1, 3, 3), np.float32))
    step = od.function(f)
    step(x, w)  # compiled outside the block; still watched inside it
    with pytest.raises(od.NumericsError, match=rf"log: its output on numpy:0 has 4 inf .* at .*{HERE}:\d+ "
                                               rf"\(return od.log\(h\)\)"):
        with od.check_numerics():
            step(x, w)
    assert step.graph(x, w).ops()[-1] == "log"  # it ran as a graph, not inlined


def test_the_backward_pass_names_the_forward_op():
    t = _f32(0.0, 1.0)
    with pytest.raises(od.NumericsError, match=rf"in the gradient of sqrt \(created at .*{HERE}:\d+\)"):
        with od.check_numerics():
            with od.GradientTape() as tape:
                tape.watch(t)
                y = od.sum(od.sqrt(t))
            tape.gradient(y, t)


def test_a_traced_backward_pass_names_the_forward_op():
    @od.function
    def grad(t):
        with od.GradientTape() as tape:
            tape.watch(t)
            y = od.sum(od.sqrt(t))
        return tape.gradient(y, t)

    t = _f32(0.0, 1.0)
    assert np.isinf(grad(t).numpy()[0])  # unchecked: inf, silently
    with pytest.raises(od.NumericsError, match=rf"in the gradient of sqrt \(created at .*{HERE}:\d+\)"):
        with od.check_numerics():
            grad(t)


def test_nothing_is_checked_or_slowed_outside_the_block():
    assert recording.ACTIVE[0] == 0  # the element-wise fast paths are on
    with od.check_numerics():
        assert recording.ACTIVE[0] == 1
    assert recording.ACTIVE[0] == 0
    assert np.isinf(od.log(_f32(0.0)).numpy()[0])


def test_other_devices_are_watched_too():
    if od.Device("opencl:0") not in od.devices():
        pytest.skip("no OpenCL device on this machine")
    x = od.tensor(np.array([0.0, 4.0], np.float32), device="opencl:0")
    with pytest.raises(od.NumericsError, match="log: its output on opencl:0 has 1 inf"):
        with od.check_numerics():
            od.log(x)


def test_numpy_floating_point_warnings_never_reach_the_user():
    x = _f32(0.0, 1.0)
    big = _f32(100.0)
    with warnings.catch_warnings(record=True) as caught:
        od.mul(od.log(x), 0.0)           # -inf * 0: invalid
        od.exp(big) - od.exp(big)        # inf - inf: invalid
        od.div(x, _f32(0.0, 0.0))        # 0 / 0 and 1 / 0
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []


def test_a_nan_made_from_infinities_is_reported():
    """inf - inf: the inputs hold inf but no NaN, so the NaN starts here."""
    x = _f32(np.inf, 1.0)
    with pytest.raises(od.NumericsError, match=rf"sub: its output on numpy:0 has 1 NaN though its inputs are free "
                                               rf"of NaN \(one holds inf\) at .*{HERE}:\d+"):
        with od.check_numerics():
            od.sub(x, x)


def test_infinities_that_arrive_are_not_reported_again_nor_nans_that_arrive():
    inf, nan = _f32(np.inf, 1.0), _f32(np.nan, np.inf)
    with od.check_numerics():
        y = od.relu(inf) * 2.0  # inf in, inf out
        z = od.sub(nan, nan)  # NaN in: its NaN and its new one are not told apart
    assert np.isinf(y.numpy()[0]) and np.isnan(z.numpy()).all()
    step = od.function(lambda a: od.relu(a) - od.relu(a))
    with pytest.raises(od.NumericsError, match=r"sub: its output on numpy:0 has 1 NaN though its inputs are free of "
                                               r"NaN \(one holds inf\)"):
        with od.check_numerics():
            step(inf)


def test_check_numerics_inside_a_traced_function_is_refused():
    def f(x):
        with od.check_numerics():
            return od.log(x)

    with pytest.raises(od.InvalidArgumentError, match=r"od.check_numerics: entered inside od.function; allowed: "
                                                      r"around the call of the compiled function"):
        od.function(f)(_f32(1.0))


def test_constant_folding_leaves_nan_making_nodes_to_run_time():
    """A constant subexpression that makes an inf is not folded: check_numerics names it when it runs."""
    def f(x):
        zero = od.tensor(np.zeros(2, np.float32))
        return x + od.log(zero)

    step = od.function(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # folding computes under NumPy's floating-point errors off too
        assert np.isinf(step(_f32(1.0, 2.0)).numpy()).all()
    assert "log" in step.graph(_f32(1.0, 2.0)).ops()
    with pytest.raises(od.NumericsError, match=rf"log: its output on numpy:0 has 2 inf though its inputs are finite "
                                               rf"at .*{HERE}:\d+ \(return x \+ od.log\(zero\)\)"):
        with od.check_numerics():
            step(_f32(1.0, 2.0))
