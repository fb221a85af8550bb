"""The oneDNN provider's element-wise kernels (sigmoid, gelu, hardswish, hardsigmoid, leaky_relu): they
agree with the NumPy kernels, keep opdispatch's rules on NaN, infinities and -0.0, decline inputs too
small to gain, and pass the conformance suite's cases."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import elementwise  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

NUMPY = od.Device("numpy:0")
CALLS = [("sigmoid", {}), ("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}), ("hardswish", {}),
         ("hardsigmoid", {}), ("leaky_relu", {"negative_slope": 0.1}), ("leaky_relu", {"negative_slope": -1.5}),
         ("leaky_relu", {"negative_slope": 0.0})]


@pytest.fixture
def every_size(monkeypatch):
    """The kernels on small inputs too (`supports()` sends those to NumPy by default)."""
    monkeypatch.setattr(elementwise, "DECLINE_SLOWER", False)


def _run(provider, op, x, attrs):
    with od.use_provider(provider):
        return od.op_function(op)(od.tensor(x), **attrs).numpy()


@pytest.mark.parametrize("op,attrs", CALLS)
def test_the_kernels_agree_with_numpy_on_wide_ranges_and_the_kinks(every_size, op, attrs):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-12, 12, 997), [-3.0, 3.0, 0.0, -0.0, 1e-30, -1e-30, 80.0, -90.0]])
    x = x.astype(np.float32).reshape(-1, 5)
    assert od.explain(op, od.tensor(x), **attrs).provider == "onednn"
    got, want = _run("onednn", op, x, attrs), _run("numpy", op, x, attrs)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("op,attrs", CALLS)
def test_nan_and_infinities_follow_opdispatchs_rules(every_size, op, attrs):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.0, -2.0], np.float32)
    got, want = _run("onednn", op, x, attrs), _run("numpy", op, x, attrs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_scalars_and_odd_shapes_run(every_size):
    for x in (np.float32(0.7), np.ones((3, 1, 7), np.float32)):
        np.testing.assert_allclose(_run("onednn", "sigmoid", np.asarray(x), {}),
                                   _run("numpy", "sigmoid", np.asarray(x), {}), rtol=1e-6)


def test_small_inputs_run_on_numpy_and_large_ones_on_onednn():
    small = od.tensor(np.ones((64, 64), np.float32))
    plan = od.explain("sigmoid", small)
    assert plan.provider == "numpy" and "small input" in dict(plan.candidates)["onednn"]
    assert od.explain("gelu", od.tensor(np.ones((512, 512), np.float32)), approximate="none").provider == "onednn"
    assert od.explain("gelu", od.tensor(np.ones((512, 512), np.float32)), approximate="tanh").provider == "numpy"
    assert od.explain("relu", od.tensor(np.ones((2048, 2048), np.float32))).provider == "numpy"  # not served


def test_conformance_checks_the_onednn_elementwise_kernels(every_size):
    from opdispatch_conformance.runner import FAILED, PASSED
    from opdispatch_conformance.suite import collect_cases, run_device

    ops = list(elementwise.KERNELS)
    run = run_device(NUMPY, collect_cases(ops, random_per_op=2, onnx=False), out=None)
    mine = [r for r in run["results"] if r.pinned == "onednn"]
    assert {r.op for r in mine} >= set(ops)
    assert not [r for r in run["results"] if r.status == FAILED]
    assert sum(r.status == PASSED for r in mine) > len(ops) * 5
