"""conv2d_bias_clip (a conv followed by ReLU6 or another clip, fused by the graph): oneDNN's clip post-op
where it is exact (finite x, w and bias, a result provably below float32 overflow, min <= max), else the
conv and np.clip; both give clip(conv2d) with NaN kept and min > max giving max."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import conv as onednn_conv  # noqa: E402
from opdispatch_onednn.primitives import BOUNDS, CACHE  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

RNG = np.random.default_rng(11)
G = {"stride": (1, 1), "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "groups": 1}


def _f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _want(x, w, b, lo, hi):
    y = onednn_conv.conv2d(x, w, b, **G)
    return np.clip(y, None if lo is None else np.float32(lo), None if hi is None else np.float32(hi))


def _fused_primitives() -> int:
    return sum(1 for k in CACHE._items if isinstance(k, tuple) and k and k[0] == "conv2d" and k[-2] is not None)


@pytest.mark.parametrize("lo, hi", [(0.0, 6.0), (-0.5, 0.25), (None, 1.0), (-1.0, None), (None, None)])
def test_the_fused_clip_matches_clip_of_conv2d(lo, hi):
    x, w, b = _f32(2, 16, 7, 6), _f32(8, 16, 3, 3), _f32(8)
    before = _fused_primitives()
    got = onednn_conv.conv2d_bias_clip(x, w, b, min=lo, max=hi, **G)
    np.testing.assert_allclose(got, _want(x, w, b, lo, hi), rtol=1e-5, atol=1e-5)
    assert _fused_primitives() > before  # a primitive with the clip post-op ran it (unbounded: +-FLT_MAX)


def test_nan_and_inf_in_x_take_the_exact_path_and_nan_stays_nan():
    x, w, b = _f32(2, 16, 7, 6), _f32(8, 16, 3, 3), _f32(8)
    x[0, 3, 2, 2], x[1, 0, 0, 0] = np.nan, np.inf
    got = onednn_conv.conv2d_bias_clip(x, w, b, min=0.0, max=6.0, **G)
    want = _want(x, w, b, 0.0, 6.0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any()  # the post-op would have turned these into 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_min_above_max_gives_max_and_huge_values_take_the_exact_path():
    x, w, b = _f32(1, 16, 5, 5), _f32(4, 16, 3, 3), _f32(4)
    np.testing.assert_array_equal(onednn_conv.conv2d_bias_clip(x, w, b, min=1.0, max=-1.0, **G),
                                  np.full((1, 4, 5, 5), -1.0, np.float32))
    big = _f32(1, 16, 5, 5, scale=1e36)  # |conv2d| could reach float32's overflow: no post-op
    np.testing.assert_allclose(onednn_conv.conv2d_bias_clip(big, w, b, min=-1.0, max=1.0, **G),
                               _want(big, w, b, -1.0, 1.0))


def test_a_clipped_result_is_known_bounded_so_the_next_fused_conv_needs_no_pass_over_it():
    x, w, b = _f32(1, 16, 6, 6), _f32(16, 16, 3, 3), _f32(16)
    y = onednn_conv.conv2d_bias_clip(x, w, b, min=0.0, max=6.0, **G)
    assert BOUNDS.of(y) == 6.0
    unknown = np.array(y)  # the same values, not recorded: measured
    assert BOUNDS.of(unknown) == max(float(unknown.max()), -float(unknown.min())) <= 6.0
    z = onednn_conv.conv2d_bias_clip(y, w, b, min=0.0, max=6.0, **G)
    np.testing.assert_allclose(z, _want(y, w, b, 0.0, 6.0), rtol=1e-5, atol=1e-5)


def test_relu6_after_a_conv_fuses_in_graph_mode_and_matches_eager():
    x = od.tensor(_f32(2, 3, 12, 12))
    w1, b1, w2 = od.tensor(_f32(16, 3, 3, 3)), od.tensor(_f32(16)), od.tensor(_f32(16, 1, 3, 3))

    def f(x):
        h = od.clip(od.conv2d(x, w1, b1, padding=1), 0.0, 6.0)
        return od.clip(od.conv2d(h, w2, padding=1, groups=16), 0.0, 6.0) + 1.0  # depthwise, as MobileNetV2

    fn = od.function(f)
    np.testing.assert_allclose(fn(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-5)
    assert fn.graph(x).ops().count("conv2d_bias_clip") == 2


def test_a_known_bound_is_forgotten_with_its_array_and_replaced_when_recorded_again():
    import gc

    a = _f32(3, 4)
    BOUNDS.record(a, 6.0)
    BOUNDS.record(a, 2.0)  # the newer bound wins; the replaced entry's weak reference never calls back
    assert BOUNDS.of(a) == 2.0
    key = id(a)
    del a
    gc.collect()
    assert key not in BOUNDS._known
    b = _f32(3, 4, scale=10.0)  # whatever id it gets, an unrecorded array is measured
    assert BOUNDS.of(b) == max(float(b.max()), -float(b.min()))


def test_fused_convs_stay_right_when_each_call_gets_new_arrays_at_new_or_reused_addresses():
    w, b = _f32(8, 8, 3, 3), _f32(8)
    from opdispatch.ops import OPS

    reference = OPS["conv2d"].reference
    keep = []
    for i in range(6):  # the primitive re-sets a memory handle only when the address changes
        x = _f32(2, 8, 7, 7)
        if i % 2:
            keep.append(x)  # alternately a fresh address and (often) the freed one
        want = np.clip(reference(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                           **G), 0.0, 6.0)
        np.testing.assert_allclose(onednn_conv.conv2d_bias_clip(x, w, b, min=0.0, max=6.0, **G), want,
                                   rtol=1e-4, atol=1e-4)
