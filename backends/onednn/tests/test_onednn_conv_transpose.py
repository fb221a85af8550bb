"""The oneDNN provider's conv_transpose2d: oneDNN's deconvolution primitive on opdispatch's
(C_in, C_out / groups, KH, KW) weights as they lie in memory, agreeing with the reference, its weights
reordered once per weight array, and the conformance suite's cases on it."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch.reference import conv as reference_conv  # noqa: E402
from opdispatch_onednn import conv as onednn_conv  # noqa: E402
from opdispatch_onednn.primitives import CACHE  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

NUMPY = od.Device("numpy:0")
CASES = [
    # (x shape, w shape, attrs as the kernel gets them)
    ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 3), {"stride": (2, 2), "padding": ((1, 1), (1, 1)), "output_padding": (1, 1)}),
    ((2, 4, 5, 6), (4, 2, 3, 2), {"groups": 2, "stride": (2, 1), "dilation": (1, 2), "padding": ((1, 2), (0, 1))}),
    ((1, 6, 4, 4), (6, 1, 3, 3), {"groups": 6, "stride": (2, 2), "padding": ((1, 1), (1, 1)),
                                  "output_padding": (1, 0)}),
    ((3, 16, 7, 7), (16, 32, 4, 4), {"stride": (2, 2), "padding": ((1, 1), (1, 1))}),
]


def _attrs(a: dict) -> dict:
    return {"stride": a.get("stride", (1, 1)), "padding": a.get("padding", ((0, 0), (0, 0))),
            "output_padding": a.get("output_padding", (0, 0)), "dilation": a.get("dilation", (1, 1)),
            "groups": a.get("groups", 1)}


@pytest.mark.parametrize("x_shape,w_shape,attrs", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_transpose2d_is_one_deconvolution_agreeing_with_the_reference(x_shape, w_shape, attrs, with_bias):
    rng = np.random.default_rng(2)
    a = _attrs(attrs)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[1] * a["groups"]).astype(np.float32) if with_bias else None
    args = (od.tensor(x), od.tensor(w)) + ((od.tensor(b),) if with_bias else ())
    plan = od.explain("conv_transpose2d", *args, **a)
    assert (plan.how, plan.provider) == ("kernel", "onednn")
    got = od.conv_transpose2d(*args, **a).numpy()
    want = reference_conv.conv_transpose2d(x.astype(np.float64), w.astype(np.float64),
                                           None if b is None else b.astype(np.float64), **a)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_weights_are_reordered_once_per_weight_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 7, 7)).astype(np.float32)
    w = rng.standard_normal((16, 32, 4, 4)).astype(np.float32)
    a = _attrs({"stride": (2, 2), "padding": ((1, 1), (1, 1))})
    onednn_conv.conv_transpose2d(x, w, **a)
    p = CACHE.get(onednn_conv._transpose_key(x.shape, w.shape, False, a), lambda: None)
    made = p.copies_made
    for _ in range(3):
        onednn_conv.conv_transpose2d(x, w, **a)
    assert p.copies_made == made
    w2 = w + 1
    y2 = onednn_conv.conv_transpose2d(x, w2, **a)
    assert p.copies_made == made + 1
    np.testing.assert_allclose(y2, reference_conv.conv_transpose2d(x, w2, None, **a), rtol=1e-4, atol=1e-4)


def test_conformance_checks_the_onednn_conv_transpose2d():
    from opdispatch_conformance.runner import FAILED, PASSED
    from opdispatch_conformance.suite import collect_cases, run_device

    run = run_device(NUMPY, collect_cases(["conv_transpose2d"], random_per_op=3, onnx=False), out=None)
    # the only kernel of the op on numpy:0, so the suite runs it unpinned (a call it declines decomposes)
    mine = [r for r in run["results"] if r.provider == "onednn" and r.op == "conv_transpose2d"]
    assert not [r for r in run["results"] if r.status == FAILED]
    assert sum(r.status == PASSED for r in mine) >= 5
