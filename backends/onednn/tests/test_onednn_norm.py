"""The oneDNN batch norm's layouts: training on rank-4 x runs oneDNN's JIT kernel on a channels-last
copy, inference the plain kernel, and both layouts give the NumPy kernel's results."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import norm  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

batch_norm_backward = od.op_function("batch_norm_backward")


def _outputs(provider, fn, *args, **kw):
    with od.use_provider(provider):
        out = fn(*args, **kw)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def test_training_runs_channels_last_on_the_jit_kernel_and_inference_runs_plain():
    assert norm._layout((4, 32, 5, 6), True) == "nhwc"
    assert norm._layout((4, 32, 5, 6), False) == "plain"
    assert norm._layout((4, 19, 5, 6), True) == "plain"  # no JIT kernel for 19 channels on NHWC
    assert norm._layout((4, 32, 5), True) == "plain"
    train = norm._forward_primitive((4, 32, 5, 6), True, 1e-5, True, True)
    assert "jit" in train.impl and train.reordered  # x in, y out
    stats, back = norm._backward_primitives((4, 32, 5, 6), True, 1e-5)
    assert stats is not None and "jit" in stats.impl and "jit" in back.impl


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("shape", [(4, 19, 5, 6), (2, 32, 7, 3), (3, 48, 4, 4)])
def test_both_layouts_agree_with_the_numpy_kernels(monkeypatch, channels_last, shape):
    monkeypatch.setattr(norm, "CHANNELS_LAST", channels_last)
    rng = np.random.default_rng(3)
    c = shape[1]
    x = od.tensor((rng.standard_normal(shape) * 2 - 1).astype(np.float32))
    dy = od.tensor(rng.standard_normal(shape).astype(np.float32))
    rm, rv = od.tensor(rng.standard_normal(c).astype(np.float32)), od.tensor(rng.uniform(0.5, 2, c).astype(np.float32))
    w, b = (od.tensor(rng.standard_normal(c).astype(np.float32)) for _ in range(2))
    for training in (True, False):
        kw = {"training": training, "momentum": 0.2, "eps": 1e-4}
        assert od.explain("batch_norm", x, rm, rv, w, b, **kw).provider == "onednn"
        for got, want in zip(*(_outputs(p, od.batch_norm, x, rm, rv, w, b, **kw) for p in ("onednn", "numpy"))):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        bkw = {"training": training, "eps": 1e-4}
        for got, want in zip(*(_outputs(p, batch_norm_backward, x, dy, rm, rv, w, **bkw) for p in ("onednn", "numpy"))):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
