"""Placement of graph nodes across two devices: copies, the fallback policy, the printed placement."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import DeviceInfo
from fake_backends import make_plugin


@pytest.fixture
def two_devices(clean_registry):
    """numpy:0 plus 'side:0', a second device with every NumPy kernel except exp."""
    from opdispatch_numpy.plugin import opdispatch_kernels

    kernels = [k for k in opdispatch_kernels() if k.op != "exp"]
    od.register_plugin(make_plugin("side", kernels, devices=[DeviceInfo(0)]))
    od.clear_placement_log()
    return od.Device("side:0")


def _pair():
    a = od.tensor(np.arange(4.0, dtype="float32"))
    return a, od.tensor(np.ones(4, dtype="float32"), device="side:0")


def test_inputs_on_two_devices_are_an_error_by_default(two_devices):
    f = od.function(lambda a, b: od.relu(a) + b)  # MISMATCH
    a, b = _pair()
    with pytest.raises(od.DeviceMismatchError) as info:
        f(a, b)
    msg = str(info.value)
    assert "add" in msg and "numpy:0" in msg and "side:0" in msg and __file__ in msg


def test_fallback_inserts_copy_nodes_and_is_visible(two_devices):
    f = od.function(lambda a, b: od.relu(a) + b)
    a, b = _pair()
    with od.device(None, fallback="warn"):
        with pytest.warns(od.PlacementWarning):
            out = f(a, b)
        g = f.graph(a, b)
    np.testing.assert_array_equal(out.numpy(), np.maximum(a.numpy(), 0) + 1)
    assert out.device == od.Device("numpy:0")  # the first input's device, as in eager
    copies = [n for n in g.nodes if n.op == "copy"]
    assert len(copies) == 1 and copies[0].device == od.Device("numpy:0")
    assert "copy %" in g.placement() and "side:0" not in [str(n.device) for n in g.nodes if n.op == "add"]
    assert od.placement_log() and "copied" in od.placement_log()[-1].reason


def test_node_without_a_kernel_falls_back_only_when_allowed(two_devices):
    f = od.function(lambda x: od.relu(od.exp(x)))  # NO-EXP
    x = od.tensor(np.zeros(3, dtype="float32"), device="side:0")
    with pytest.raises(od.UnsupportedError, match="exp .*created at .*test_graph_placement.py.*no kernel for exp"):
        f(x)
    with od.device(None, fallback="record"):
        out = f(x)
        g = f.graph(x)
    np.testing.assert_array_equal(out.numpy(), np.ones(3))
    assert out.device == two_devices
    placed = [(n.op, str(n.device)) for n in g.nodes]
    assert placed == [("copy", "numpy:0"), ("exp", "numpy:0"), ("copy", "side:0"), ("relu", "side:0")]
    assert od.placement_log()[-1].ran_on == od.Device("numpy:0")


def test_explicit_to_inside_a_function_is_a_copy_node(two_devices):
    @od.function
    def f(a):
        return od.relu(a.to("side:0"))

    a, _ = _pair()
    out = f(a)
    assert out.device == two_devices
    g = f.graph(a)
    assert [(n.op, str(n.device)) for n in g.nodes] == [("copy", "side:0"), ("relu", "side:0")]


def test_ops_without_tensor_inputs_follow_the_device_context(two_devices):
    @od.function
    def f():
        return od.relu(od.tensor(np.array([-1.0, 2.0], dtype="float32")))

    with od.device("side:0"):
        out = f()
    assert out.device == two_devices
    np.testing.assert_array_equal(out.numpy(), [0, 2])
