"""Each graph pass alone, on graphs traced with every pass switched off."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import DeviceInfo, Kernel
from opdispatch.placement import current_placement
from opdispatch.graph.passes import (eliminate_common_subexpressions, eliminate_dead_code, fold_batch_norm,
                                     fold_bias_add, fold_constants, fuse, fuse_conv_relu, plan_memory,
                                     mask_before_max_pool_backward, read_relu_outputs)
from opdispatch.graph.executor import Executable
from opdispatch.graph.function import trace
from opdispatch.graph.pipeline import PASS_NAMES, lower
from fake_backends import make_plugin

OFF = dict.fromkeys(PASS_NAMES, False)
RNG = np.random.default_rng(1)


def t(*shape):
    return od.tensor(RNG.standard_normal(shape).astype("float32"))


def raw(fn, *args):
    """The graph of ``fn`` as traced, before any pass."""
    return trace(fn, *args)


def run(graph, *args):
    return graph(*args)


def test_dead_code_elimination_drops_unused_nodes_and_constants():
    def f(x):
        od.exp(x + 2.0)  # unused
        return od.relu(x)

    g = raw(f, t(3))
    assert g.ops() == ["add", "exp", "relu"] and len(g.constants) == 1
    out = eliminate_dead_code(g)
    assert out.ops() == ["relu"] and not out.constants
    assert eliminate_dead_code(out) is out


def test_common_subexpression_elimination_merges_equal_nodes_and_constants():
    def f(x):
        return od.relu(x) * 2.0 + od.relu(x) * 2.0

    x = t(4)
    g = raw(f, x)
    assert g.ops().count("relu") == 2 and len(g.constants) == 2
    out = eliminate_common_subexpressions(g)
    assert out.ops() == ["relu", "mul", "add"] and len(out.constants) == 1
    np.testing.assert_allclose(run(out, x).numpy(), 4 * np.maximum(x.numpy(), 0), rtol=1e-6)


def test_constant_folding_computes_constant_subgraphs_with_the_device_kernels():
    c = od.tensor(np.array([0.5, 1.0, 2.0], dtype="float32"))

    def f(x):
        return x * od.exp(od.neg(c))

    x = t(3)
    g = raw(f, x)
    assert g.ops() == ["neg", "exp", "mul"]
    out = fold_constants(g)
    assert out.ops() == ["mul"]
    folded = [a for a in out.constants.values() if a.shape == (3,)]
    np.testing.assert_array_equal(folded[-1], od.exp(od.neg(c)).numpy())
    np.testing.assert_array_equal(run(out, x).numpy(), run(g, x).numpy())


def test_constant_folding_leaves_large_broadcasts_alone():
    def f(x):
        return x + od.reshape(od.tensor(np.float32(1.0)), (1, 1)) * np.ones((1, 1), np.float32)

    g = fold_constants(raw(f, t(2, 2)))
    assert g.ops() == ["add"]  # tiny results are folded


def _conv_net(x, w, b):
    y = od.conv2d(x, w)  # CONV
    y = y + od.reshape(b, (1, 4, 1, 1))  # BIAS
    return od.relu(y)  # RELU


def test_fusion_conv_bias_relu_keeps_user_lines_and_matches_eager():
    x, w, b = t(2, 3, 6, 6), t(4, 3, 3, 3), t(4)
    g = raw(_conv_net, x, w, b)
    assert g.ops() == ["conv2d", "reshape", "add", "relu"]
    out = fuse(g)
    assert out.ops()[-1] == "conv2d_bias_relu" and "conv2d" not in out.ops() and "relu" not in out.ops()
    node = out.nodes[-1]
    lines = {s.line for s in node.sources}
    assert len(lines) == 3 and node.fused_from == ("conv2d", "add", "relu")
    np.testing.assert_allclose(run(out, x, w, b).numpy(), _conv_net(x, w, b).numpy(), rtol=1e-5, atol=1e-6)
    assert fold_bias_add(g).ops() == ["reshape", "reshape", "conv2d", "relu"]
    assert fuse_conv_relu(g) is g  # the conv output feeds an add, not a relu


def test_fusion_only_where_the_device_can_run_the_fused_form(clean_registry):
    from opdispatch_numpy.conv import conv2d

    od.register_plugin(make_plugin("convonly", [Kernel("conv2d", conv2d, dtypes=("float32",))],
                                   devices=[DeviceInfo(0, dtypes=("float32",))]))
    x = od.tensor(np.ones((1, 1, 4, 4), np.float32), device="convonly:0")
    w = od.tensor(np.ones((1, 1, 3, 3), np.float32), device="convonly:0")
    g = raw(lambda x, w: od.relu(od.conv2d(x, w)), x, w)
    assert fuse_conv_relu(g) is g  # no relu kernel there: no conv2d_bias_relu


def test_batch_norm_folds_into_the_preceding_conv_in_inference():
    x = t(2, 3, 6, 6)
    w, b = t(4, 3, 3, 3), t(4)
    mean, var = t(4), od.tensor(RNG.uniform(0.5, 2.0, 4).astype("float32"))
    gamma, beta = t(4), t(4)

    def f(x):
        return od.batch_norm(od.conv2d(x, w, b), mean, var, gamma, beta)

    g = raw(f, x)
    assert g.ops() == ["conv2d", "batch_norm"]
    folded = fold_batch_norm(g)
    assert "batch_norm" not in folded.ops() and folded.nodes[-1].fused_from == ("conv2d", "batch_norm")
    np.testing.assert_allclose(run(folded, x).numpy(), f(x).numpy(), rtol=1e-4, atol=1e-5)
    final = fold_constants(folded)  # parameters are constants: the folded weights are precomputed
    assert final.ops() == ["conv2d"]
    training = raw(lambda x: od.batch_norm(od.conv2d(x, w, b), mean, var, training=True)[0], x)
    assert fold_batch_norm(training) is training


def test_memory_plan_frees_each_value_after_its_last_reader():
    def f(x):
        a = od.relu(x)
        b = od.exp(a)
        c = od.neg(b)
        return c + a

    g = plan_memory(raw(f, t(8)))
    frees = dict(zip(g.ops(), g.memory.free_after))
    a, b = g.nodes[0].outputs[0], g.nodes[1].outputs[0]
    assert frees["neg"] == (b,) and frees["add"] == (a, g.nodes[2].outputs[0])
    assert g.memory.peak_bytes < g.memory.total_bytes
    assert "[free %" in str(g)


def _probe_backend():
    """A backend whose relu counts, at each call, how many arrays it made earlier are still alive."""
    made: list = []
    alive: list = []

    def relu(x):
        alive.append(sum(r() is not None for r in made))
        out = np.maximum(x, 0)
        made.append(weakref.ref(out))
        return out

    plugin = make_plugin("probe", [Kernel("relu", relu, dtypes=("float32",))],
                         devices=[DeviceInfo(0, dtypes=("float32",))])
    return plugin, alive


@pytest.mark.parametrize("memory", [True, False])
def test_executor_drops_buffers_after_their_last_reader(clean_registry, memory):
    plugin, alive = _probe_backend()
    od.register_plugin(plugin)
    x = od.tensor(np.ones(1000, np.float32), device="probe:0")

    def f(x):
        for _ in range(5):
            x = od.relu(x)
        return x

    g = lower(raw(f, x), [x.device], current_placement(), {**OFF, "memory": memory})
    out = Executable(g).run([x.data])[0]
    assert out.shape == (1000,)
    assert alive == ([0, 1, 1, 1, 1] if memory else [0, 1, 2, 3, 4])


def test_relu_gradients_read_the_relu_output_so_training_graphs_fuse():
    x, w = t(2, 3, 6, 6), t(4, 3, 3, 3)

    def train(x, w):
        with od.GradientTape() as tape:
            tape.watch(w)
            loss = od.sum(od.relu(od.conv2d(x, w)))
        return tape.gradient(loss, w)

    g = raw(train, x, w)
    conv_out = g.nodes[g.ops().index("conv2d")].outputs[0]
    relu_out = g.nodes[g.ops().index("relu")].outputs[0]
    assert g.nodes[g.ops().index("relu_backward")].inputs[1] == conv_out
    out = read_relu_outputs(g)
    assert out.nodes[out.ops().index("relu_backward")].inputs[1] == relu_out
    assert fuse_conv_relu(g) is g and "conv2d_bias_relu" in fuse(g).ops()
    np.testing.assert_allclose(run(fuse(g), x, w).numpy(), train(x, w).numpy(), rtol=1e-5)


@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)])
def test_relu_gradient_moves_before_the_max_pool_gradient_bit_for_bit(pool):
    x, w = t(2, 3, 8, 8), t(4, 3, 3, 3)
    x = od.tensor(np.round(x.numpy()))  # ties and exact zeros after the relu: the first-maximum rule matters

    def train(x, w):
        with od.GradientTape() as tape:
            tape.watch(w)
            loss = od.sum(od.max_pool2d(od.relu(od.conv2d(x, w, padding=1)), **pool) * 3.0)
        return tape.gradient(loss, w)

    g = read_relu_outputs(raw(train, x, w))
    out = mask_before_max_pool_backward(g)
    ops = out.ops()
    assert ops.index("relu_backward") < ops.index("max_pool2d_backward")
    masked = out.nodes[ops.index("relu_backward")]
    pooled = out.nodes[ops.index("max_pool2d")].outputs[0]
    assert masked.inputs[1] == pooled and out.values[masked.outputs[0]].shape == out.values[pooled].shape
    np.testing.assert_array_equal(run(out, x, w).numpy(), run(g, x, w).numpy())
    np.testing.assert_array_equal(run(out, x, w).numpy(), train(x, w).numpy())
    assert mask_before_max_pool_backward(out) is out


def test_relu_gradient_stays_when_the_pool_gradient_has_other_readers():
    x, w = t(1, 2, 6, 6), t(2, 2, 3, 3)

    def train(x, w):
        with od.GradientTape(persistent=True) as tape:
            tape.watch(x)
            h = od.relu(x)
            loss = od.sum(od.max_pool2d(h, 2))
        return tape.gradient(loss, x), tape.gradient(loss, h)

    g = read_relu_outputs(eliminate_common_subexpressions(raw(train, x, w)))
    assert g.ops().count("max_pool2d_backward") == 1
    routed = g.nodes[g.ops().index("max_pool2d_backward")].outputs[0]
    assert routed in g.outputs  # d loss / d h is returned too: the rewrite must leave it alone
    assert mask_before_max_pool_backward(g) is g


def test_clip_after_a_conv_fuses_only_where_the_device_has_a_kernel_for_the_fused_op(clean_registry):
    from opdispatch_numpy.conv import conv2d
    from opdispatch_numpy.elementwise import clip
    from opdispatch.reference.conv import conv2d_bias_clip

    def fused(x, w, bias=None, **attrs):
        return conv2d_bias_clip(x, w, bias, **attrs).astype(x.dtype)

    base = [Kernel("conv2d", conv2d, dtypes=("float32",)), Kernel("clip", clip, dtypes=("float32",))]
    od.register_plugin(make_plugin("withclip", base + [Kernel("conv2d_bias_clip", fused, dtypes=("float32",))],
                                   devices=[DeviceInfo(0, dtypes=("float32",))]))
    od.register_plugin(make_plugin("noclip", base, devices=[DeviceInfo(0, dtypes=("float32",))]))
    for dev, want in (("withclip:0", ["conv2d_bias_clip"]), ("noclip:0", ["conv2d", "clip"])):
        x = od.tensor(RNG.standard_normal((1, 2, 5, 5)).astype("float32"), device=dev)
        w = od.tensor(RNG.standard_normal((3, 2, 3, 3)).astype("float32"), device=dev)

        def f(x, w):
            return od.clip(od.conv2d(x, w, padding=1), 0.0, 6.0)

        g = raw(f, x, w)
        out = fuse(g)
        assert out.ops() == want, dev
        if want == ["conv2d_bias_clip"]:
            assert dict(out.nodes[0].attrs)["min"] == 0.0 and dict(out.nodes[0].attrs)["max"] == 6.0
            assert out.nodes[0].fused_from == ("conv2d", "clip")
        np.testing.assert_allclose(run(out, x, w).numpy(), f(x, w).numpy(), rtol=1e-5, atol=1e-6)

        def both(x, w):  # the conv's result has another reader: nothing fuses
            y = od.conv2d(x, w, padding=1)
            return od.clip(y, 0.0, 6.0), y

        g = raw(both, x, w)
        assert fuse(g).ops() == ["conv2d", "clip"]
