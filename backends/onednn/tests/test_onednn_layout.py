"""Channels-last results (``layout="channels_last"``, asked for by the graph layout pass) from the oneDNN
provider's conv2d, conv2d_bias_relu, max_pool2d and avg_pool2d: the same values as plain results,
channels-last inputs read without a reorder, element-wise kernels keeping the layout, and a graph
whose consecutive oneDNN nodes exchange channels-last arrays giving what it gives without the pass."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import conv as onednn_conv  # noqa: E402
from opdispatch_onednn import elementwise as onednn_elementwise  # noqa: E402
from opdispatch_onednn import library  # noqa: E402
from opdispatch_onednn import pool as onednn_pool  # noqa: E402
from opdispatch_onednn.primitives import CACHE, CHANNELS_LAST, PLAIN  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

RNG = np.random.default_rng(5)
GEOMETRY = {"stride": (1, 1), "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "groups": 1}


def _channels_last(a: np.ndarray) -> bool:
    return not a.flags.c_contiguous and a.transpose(0, 2, 3, 1).flags.c_contiguous


def _as_channels_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("groups", [1, 16])
@pytest.mark.parametrize("kernel", [onednn_conv.conv2d, onednn_conv.conv2d_bias_relu])
def test_conv_writes_channels_last_when_asked_and_reads_it_as_it_is(kernel, groups):
    x, w, b = _f32(2, 16, 9, 7), _f32(32, 16 // groups, 3, 3), _f32(32)
    a = dict(GEOMETRY, groups=groups)
    plain = kernel(x, w, b, **a)
    assert plain.flags.c_contiguous
    for x_in in (x, _as_channels_last(x)):
        y = kernel(x_in, w, b, layout="channels_last", **a)
        assert _channels_last(y)
        np.testing.assert_allclose(y, plain, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(kernel(x_in, w, b, **a), plain, rtol=1e-5, atol=1e-5)  # plain from either
    p = onednn_conv._primitive("conv2d", x.shape, w.shape, a, True, layouts=(CHANNELS_LAST, CHANNELS_LAST))
    assert library.ARG_SRC not in p.reordered and library.ARG_DST not in p.reordered, p.impl


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pooling_writes_channels_last_when_asked_and_reads_it_as_it_is(op):
    x = _f32(2, 16, 10, 9)
    a = {"kernel_size": (3, 3), "stride": (2, 2), "padding": ((1, 1), (0, 1)), "ceil_mode": False}
    a.update({"dilation": (1, 1)} if op == "max_pool2d" else {"count_include_pad": False})
    kernel = getattr(onednn_pool, op)
    plain = kernel(x, **a)
    y = kernel(_as_channels_last(x), layout="channels_last", **a)
    assert _channels_last(y)
    np.testing.assert_allclose(y, plain, rtol=1e-6, atol=1e-6)
    p = onednn_pool._primitive(op, x.shape, a, (CHANNELS_LAST, CHANNELS_LAST))
    assert not p.reordered, p.impl


def test_an_elementwise_kernel_keeps_a_channels_last_layout():
    x = _as_channels_last(_f32(2, 16, 6, 5))
    y = onednn_elementwise.KERNELS["sigmoid"][0](x)
    assert _channels_last(y)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-5, atol=1e-6)


def test_a_strided_input_that_is_neither_layout_is_copied_first():
    x, w, b = _f32(2, 16, 9, 14), _f32(8, 16, 3, 3), _f32(8)
    view = x[:, :, :, ::2]
    np.testing.assert_allclose(onednn_conv.conv2d(view, w, b, layout="channels_last", **GEOMETRY),
                               onednn_conv.conv2d(np.ascontiguousarray(view), w, b, **GEOMETRY), rtol=1e-6, atol=1e-6)


def _net(params):
    w1, b1, w2, b2, w3 = params

    def f(x):
        h = od.relu(od.conv2d(x, w1, b1, padding=1))          # conv2d_bias_relu after fusion
        h = od.max_pool2d(h, 2)
        h = od.clip(od.conv2d(h, w2, b2, padding=1), 0.0, 6.0) + h
        return od.reshape(od.conv2d(h, w3), (x.shape[0], -1))
    return f


def test_a_graph_of_onednn_nodes_exchanges_channels_last_arrays_and_gives_the_same_values():
    x = od.tensor(_f32(2, 3, 16, 16))
    params = [od.tensor(a) for a in (_f32(16, 3, 3, 3), _f32(16), _f32(16, 16, 3, 3), _f32(16), _f32(4, 16, 1, 1))]
    f = _net(params)
    on = od.function(f)
    y_on = on(x).numpy()
    y_off = od.function(f, passes={"layout": False})(x).numpy()
    np.testing.assert_allclose(y_on, y_off, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_on, f(x).numpy(), rtol=1e-5, atol=1e-5)
    from opdispatch.graph.function import trace
    from opdispatch.graph.pipeline import lower
    from opdispatch.placement import current_placement

    g = lower(trace(f, x), [x.device], current_placement())
    layouts = [(n.op, n.layout) for n in g.nodes if n.op.startswith(("conv", "max_pool"))]
    assert layouts == [("conv2d_bias_relu", "channels_last"), ("max_pool2d", "channels_last"),
                       ("conv2d_bias_clip", "channels_last"), ("conv2d", "")], g  # the last one feeds a reshape
    CACHE.clear()
    on(x)
    keys = [k for k in list(CACHE._items) if isinstance(k, tuple) and k and k[0] == "conv2d"]
    assert [k[-1] for k in keys] == [(PLAIN, CHANNELS_LAST), (CHANNELS_LAST, CHANNELS_LAST), (CHANNELS_LAST, PLAIN)]


def test_the_gradient_kernels_read_channels_last_inputs_as_they_are():
    x, w, dy = _f32(2, 16, 9, 7), _f32(8, 16, 3, 3), _f32(2, 8, 9, 7)
    g = dict(GEOMETRY)
    want_dx = onednn_conv.conv2d_backward_input(dy, w, input_shape=x.shape, **g)
    want_dw = onednn_conv.conv2d_backward_weight(x, dy, weight_shape=w.shape, **g)
    np.testing.assert_allclose(onednn_conv.conv2d_backward_input(_as_channels_last(dy), w, input_shape=x.shape, **g),
                               want_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(onednn_conv.conv2d_backward_weight(_as_channels_last(x), _as_channels_last(dy),
                                                                  weight_shape=w.shape, **g),
                               want_dw, rtol=1e-5, atol=1e-4)
    key = [k for k in CACHE._items if k[0] == "conv2d_backward_weight" and k[-1] == (CHANNELS_LAST, CHANNELS_LAST)]
    assert key, "a primitive for channels-last x and dy"
    a = {"kernel_size": (2, 2), "stride": (2, 2), "padding": ((0, 0), (0, 1)), "ceil_mode": False}
    x, dy = _f32(2, 16, 8, 9), _f32(2, 16, 4, 5)
    want = onednn_pool.max_pool2d_backward(x, dy, dilation=(1, 1), **a)
    got = onednn_pool.max_pool2d_backward(_as_channels_last(x), _as_channels_last(dy), dilation=(1, 1), **a)
    np.testing.assert_array_equal(got, want)
    want = onednn_pool.avg_pool2d_backward(dy, input_shape=x.shape, count_include_pad=False, **a)
    got = onednn_pool.avg_pool2d_backward(_as_channels_last(dy), input_shape=x.shape, count_include_pad=False, **a)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_training_graph_gives_the_same_gradients_with_and_without_the_pass():
    x = od.tensor(_f32(2, 3, 16, 16))
    params = [od.tensor(a) for a in (_f32(16, 3, 3, 3), _f32(16), _f32(16, 16, 3, 3), _f32(16), _f32(4, 16, 1, 1))]

    def grads(x, *ps):
        with od.GradientTape() as tape:
            tape.watch(list(ps))
            loss = od.sum(_net(ps)(x) ** 2)
        return tape.gradient(loss, list(ps))

    on = od.function(grads)(x, *params)
    off = od.function(grads, passes={"layout": False})(x, *params)
    for a, b in zip(on, off):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    from opdispatch.graph.function import trace
    from opdispatch.graph.pipeline import lower
    from opdispatch.placement import current_placement

    g = lower(trace(grads, x, *params), [x.device] * (1 + len(params)), current_placement())
    assert sum(1 for n in g.nodes if n.layout) >= 3, g  # the backward ops then read channels-last values
