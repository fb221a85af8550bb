"""The layout pass alone (`opdispatch.graph.passes.layout`): which nodes it asks for channels-last results,
that the kernels receive ``layout=`` exactly there, and that results are unchanged; on a fake backend
whose conv2d declares ``layouts=("channels_last",)``."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import DeviceInfo, Kernel
from opdispatch.graph.function import trace
from opdispatch.graph.passes import choose_layouts
from opdispatch.graph.pipeline import PASS_NAMES, lower
from opdispatch.placement import current_placement
from opdispatch_numpy import conv as numpy_conv
from opdispatch_numpy import elementwise as numpy_elementwise
from opdispatch_numpy import layout as numpy_layout
from opdispatch_numpy import pool as numpy_pool
from fake_backends import make_plugin

RNG = np.random.default_rng(3)
NO_LAYOUT = dict.fromkeys(PASS_NAMES, True) | {"layout": False}


def _channels_last(a: np.ndarray) -> bool:
    return a.ndim == 4 and not a.flags.c_contiguous and a.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.fixture
def layoutdev(clean_registry):
    """Backend ``layoutdev``: a conv2d that writes channels-last results when asked and records the
    ``layout`` it got and whether its x came channels-last; relu, add, reshape, max_pool2d as NumPy's."""
    calls: list[tuple[str, bool]] = []

    def conv2d(x, w, bias=None, *, stride, padding, dilation, groups, layout=""):
        calls.append((layout, _channels_last(x)))
        y = numpy_conv.conv2d(np.ascontiguousarray(x), w, bias, stride=stride, padding=padding, dilation=dilation,
                              groups=groups)
        return np.ascontiguousarray(y.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if layout else y

    kernels = [Kernel("conv2d", conv2d, dtypes=("float32",), layouts=("channels_last",)),
               Kernel("relu", numpy_elementwise.relu, dtypes=("float32",)),
               Kernel("add", np.add, dtypes=("float32",)),
               Kernel("reshape", numpy_layout.reshape, dtypes=("float32",)),
               Kernel("max_pool2d", numpy_pool.max_pool2d, dtypes=("float32",))]
    od.register_plugin(make_plugin("layoutdev", kernels, devices=[DeviceInfo(0, dtypes=("float32",))]))
    return calls


def _t(*shape):
    return od.tensor(RNG.standard_normal(shape).astype(np.float32), device="layoutdev:0")


def _lowered(fn, *args):
    g = trace(fn, *args)
    return lower(g, [a.device for a in args], current_placement(), NO_LAYOUT)


def test_a_conv_feeding_another_through_elementwise_nodes_writes_channels_last(layoutdev):
    x, w1, w2 = _t(2, 3, 8, 8), _t(4, 3, 3, 3), _t(5, 4, 3, 3)

    def f(x):
        h = od.relu(od.conv2d(x, w1, padding=1))
        return od.conv2d(h + h, w2)

    g = _lowered(f, x)
    out = choose_layouts(g)
    convs = [n for n in out.nodes if n.op == "conv2d"]
    assert [n.layout for n in convs] == ["channels_last", ""]  # the last one's result is the graph output
    assert "layout[channels_last]" in str(out)
    assert choose_layouts(out).nodes == out.nodes  # idempotent


def test_no_layout_where_the_result_reaches_a_graph_output_or_no_channels_last_reader(layoutdev):
    x, w = _t(1, 2, 6, 6), _t(3, 2, 3, 3)
    g = _lowered(lambda x: od.relu(od.conv2d(x, w)), x)
    assert choose_layouts(g) is g  # through relu to the output
    g = _lowered(lambda x: od.max_pool2d(od.conv2d(x, w), 2), x)
    assert choose_layouts(g) is g  # max_pool2d's kernel declares no layout
    w2 = _t(3, 3, 1, 1)

    def both(x):  # a conv reader, but the relu of the same result is also returned
        h = od.relu(od.conv2d(x, w))
        return od.conv2d(h, w2), h

    g = _lowered(both, x)
    assert choose_layouts(g) is g  # graphs return what they would without the pass


def test_graphs_pass_layout_to_the_kernels_and_give_the_same_values(layoutdev):
    x, w1, w2 = _t(2, 3, 8, 8), _t(4, 3, 3, 3), _t(5, 4, 1, 1)

    def f(x):
        return od.reshape(od.conv2d(od.relu(od.conv2d(x, w1, padding=1)), w2), (2, -1))

    eager = f(x).numpy()
    layoutdev.clear()
    on = od.function(f)(x).numpy()
    assert layoutdev == [("channels_last", False), ("", True)]  # the second conv read the first's layout
    layoutdev.clear()
    off = od.function(f, passes={"layout": False})(x).numpy()
    assert layoutdev == [("", False), ("", False)]
    np.testing.assert_array_equal(on, off)
    np.testing.assert_allclose(on, eager, rtol=1e-6, atol=1e-6)


def test_a_kernel_declaring_an_unknown_layout_or_no_layout_argument_fails_at_load(clean_registry):
    def conv2d(x, w, bias=None, *, stride, padding, dilation, groups):
        return numpy_conv.conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)

    def with_layout(x, w, bias=None, *, stride, padding, dilation, groups, layout=""):
        return conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)

    for name, kernel, message in (
            ("badlayout", Kernel("conv2d", with_layout, dtypes=("float32",), layouts=("nChw16c",)), "nChw16c"),
            ("nolayoutarg", Kernel("conv2d", conv2d, dtypes=("float32",), layouts=("channels_last",)), "layout")):
        status = od.register_plugin(make_plugin(name, [kernel]))
        assert status.status == "failed" and message in status.reason, status


def test_passes_layout_all_asks_every_such_kernel_and_other_values_are_refused(layoutdev):
    x, w = _t(1, 2, 6, 6), _t(3, 2, 3, 3)
    g = trace(lambda x: od.relu(od.conv2d(x, w)), x)
    low = lower(g, [x.device], current_placement(), {"layout": "all"})
    assert [n.layout for n in low.nodes if n.op == "conv2d"] == ["channels_last"]
    assert od.explain("conv2d", x, w).layouts == ("channels_last",)
    assert od.explain("relu", x).layouts == ()
    with pytest.raises(od.InvalidArgumentError, match="'all'"):
        od.function(lambda x: x, passes={"layout": "sometimes"})
    with pytest.raises(od.InvalidArgumentError, match="True or False"):
        od.function(lambda x: x, passes={"fuse": "all"})


def test_conformance_catches_a_kernel_whose_channels_last_result_is_wrong(clean_registry):
    from opdispatch_conformance.cases import grid_cases
    from opdispatch_conformance.runner import FAILED, PASSED, run_case

    def conv2d(x, w, bias=None, *, stride, padding, dilation, groups, layout=""):
        y = numpy_conv.conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
        if layout:  # the NHWC buffer filled in NCHW order: right shape and strides, wrong values
            n, c, h, w_ = y.shape
            return np.ascontiguousarray(y).reshape(n, h, w_, c).transpose(0, 3, 1, 2)
        return y

    od.register_plugin(make_plugin("badlayout", [Kernel("conv2d", conv2d, layouts=("channels_last",))]))
    dev = od.Device("badlayout:0")
    cases = [c for c in grid_cases() if c.op == "conv2d"][:6]
    assert [run_case(c, dev, "float32", mode="eager").status for c in cases] == [PASSED] * len(cases)
    graph = [run_case(c, dev, "float32", mode="graph") for c in cases]
    wrong = [r for r in graph if r.status == FAILED]
    assert wrong and all("the layout the kernel declares" in r.message for r in wrong), [r.message for r in graph]
