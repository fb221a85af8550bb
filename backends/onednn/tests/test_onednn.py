"""The oneDNN kernel provider (backends/onednn, distribution opdispatch-onednn) on numpy:0: it is
loaded and tried before the NumPy kernels, agrees with them, declines what oneDNN cannot run (the
NumPy kernel then runs), caches a primitive per signature, runs from several threads at once, and
reports itself unavailable (with the reason) when libdnnl cannot be loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import conv as onednn_conv  # noqa: E402
from opdispatch_onednn import library  # noqa: E402
from opdispatch_onednn.primitives import CACHE  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

NUMPY = od.Device("numpy:0")
conv2d_bias_relu = od.op_function("conv2d_bias_relu")
conv2d_backward_input = od.op_function("conv2d_backward_input")
conv2d_backward_weight = od.op_function("conv2d_backward_weight")

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 4, 9, 8), (6, 4, 3, 3), {"padding": 1}),
    ((2, 4, 9, 8), (6, 2, 3, 3), {"padding": ((1, 0), (2, 1)), "groups": 2, "stride": (2, 1)}),
    ((1, 3, 12, 11), (5, 3, 3, 2), {"dilation": (2, 3), "padding": ((0, 2), (3, 1))}),
    ((3, 8, 10, 10), (8, 1, 3, 3), {"groups": 8, "padding": 1, "stride": 2}),
    ((2, 16, 14, 14), (32, 16, 5, 5), {"padding": 2}),
]


def _arrays(x_shape, w_shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


def _with(provider, fn, *args, **kw):
    with od.use_provider(provider):
        return fn(*args, **kw).numpy()


def test_the_provider_is_loaded_and_tried_first():
    status = od.providers()["onednn"]
    assert (status.status, status.priority, status.targets) == ("loaded", 100, ("numpy",))
    for op in ("conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"):
        assert op in status.ops
        assert [r.provider for r in od.kernels(NUMPY, op)][:1] == ["onednn"]
    x, w, b = (od.tensor(a) for a in _arrays((2, 4, 9, 8), (6, 4, 3, 3)))
    assert od.explain("conv2d", x, w, b, padding=1).provider == "onednn"


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv2d_and_the_fused_relu_agree_with_the_numpy_kernels(x_shape, w_shape, attrs):
    x, w, b = (od.tensor(a) for a in _arrays(x_shape, w_shape))
    for fn, args in ((od.conv2d, (x, w)), (od.conv2d, (x, w, b)), (conv2d_bias_relu, (x, w, b))):
        assert od.explain(fn.__name__ if fn is not od.conv2d else "conv2d", *args, **attrs).provider == "onednn"
        got, want = _with("onednn", fn, *args, **attrs), _with("numpy", fn, *args, **attrs)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_fused_relu_keeps_nan_like_opdispatchs_relu():
    x, w, b = _arrays((1, 2, 5, 5), (3, 2, 3, 3))
    x[0, 0, 2, 2] = np.nan
    y = _with("onednn", conv2d_bias_relu, od.tensor(x), od.tensor(w), od.tensor(b), padding=1)
    want = _with("numpy", conv2d_bias_relu, od.tensor(x), od.tensor(w), od.tensor(b), padding=1)
    assert np.isnan(y).sum() == np.isnan(want).sum() == 27  # every output whose window holds the NaN
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_the_gradients_agree_with_the_numpy_kernels(x_shape, w_shape, attrs):
    xa, wa, _ = _arrays(x_shape, w_shape)
    x, w = od.tensor(xa), od.tensor(wa)
    dy = od.tensor(np.random.default_rng(1).standard_normal(od.conv2d(x, w, **attrs).shape).astype(np.float32))
    for fn, args, kw in ((conv2d_backward_input, (dy, w), {"input_shape": x.shape}),
                         (conv2d_backward_weight, (x, dy), {"weight_shape": w.shape})):
        assert od.explain(fn.__name__, *args, **kw, **attrs).provider == "onednn"
        got, want = _with("onednn", fn, *args, **kw, **attrs), _with("numpy", fn, *args, **kw, **attrs)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_tape_through_conv2d_uses_the_onednn_gradients_and_matches_numpy():
    xa, wa, ba = _arrays((2, 3, 8, 8), (4, 3, 3, 3))
    grads = {}
    for provider in ("onednn", "numpy"):
        x, w, b = od.tensor(xa), od.tensor(wa), od.tensor(ba)
        with od.use_provider(provider):
            with od.GradientTape() as tape:
                tape.watch([x, w, b])
                loss = od.sum(od.relu(od.conv2d(x, w, b, padding=1, stride=2)) ** 2)
            grads[provider] = [g.numpy() for g in tape.gradient(loss, [x, w, b])]
    for got, want in zip(grads["onednn"], grads["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_supports_declines_float64_and_empty_tensors_and_the_numpy_kernel_runs():
    x, w, _ = _arrays((2, 3, 6, 6), (4, 3, 3, 3), dtype=np.float64)
    plan = od.explain("conv2d", od.tensor(x), od.tensor(w))
    assert plan.provider == "numpy"
    assert "supports float32, not float64" in dict(plan.candidates)["onednn"]
    empty = od.tensor(np.zeros((0, 3, 6, 6), np.float32))
    plan = od.explain("conv2d", empty, od.tensor(w.astype(np.float32)))
    assert plan.provider == "numpy" and "empty tensor" in dict(plan.candidates)["onednn"]
    assert od.conv2d(empty, od.tensor(w.astype(np.float32))).shape == (0, 4, 4, 4)


def test_supports_reports_what_onednn_refuses():
    from opdispatch.schema import TensorMeta

    f32 = np.dtype(np.float32)
    # channels that do not match (opdispatch's checks never let this through): oneDNN's own refusal
    metas = [TensorMeta((1, 3, 6, 6), f32), TensorMeta((4, 5, 3, 3), f32), None]
    reason = onednn_conv.forward_supports(metas, {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1),
                                                  "groups": 1})
    assert reason is not None and "convolution forward failed: invalid_arguments" in reason


def test_a_primitive_is_built_once_per_signature():
    x, w, b = (od.tensor(a) for a in _arrays((2, 5, 7, 7), (3, 5, 3, 3)))
    od.conv2d(x, w, b, padding=1)
    built = CACHE.built
    for _ in range(3):
        od.conv2d(x, w, b, padding=1)
        od.conv2d(od.tensor(np.ones((2, 5, 7, 7), np.float32)), w, b, padding=1)  # same signature, new data
    assert CACHE.built == built
    od.conv2d(x, w, b, padding=2)
    assert CACHE.built == built + 1


def test_threads_run_primitives_concurrently_with_the_serial_results():
    cases = [_arrays((4, 8, 12, 12), (16, 8, 3, 3), seed=s) for s in range(6)]
    want = [_with("numpy", od.conv2d, od.tensor(x), od.tensor(w), od.tensor(b), padding=1) for x, w, b in cases]
    got: dict[int, list] = {}
    errors = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            out = []
            for i in range(12):
                k = (t + i) % len(cases)
                x, w, b = cases[k]
                out.append((k, od.conv2d(od.tensor(x), od.tensor(w), od.tensor(b), padding=1).numpy()))
            got[t] = out
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for out in got.values():
        for i, y in out:
            np.testing.assert_allclose(y, want[i], rtol=1e-4, atol=1e-4)


def _child(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_without_the_library_the_provider_is_unavailable_and_numpy_runs(tmp_path):
    code = ("import numpy as np, opdispatch as od\n"
            "st = od.providers()['onednn']\n"
            "x, w = od.tensor(np.ones((1, 2, 5, 5), np.float32)), od.tensor(np.ones((3, 2, 3, 3), np.float32))\n"
            "print(st.status, '|', st.reason, '|', od.explain('conv2d', x, w).provider, '|',\n"
            "      od.conv2d(x, w).numpy().max())")
    missing = tmp_path / "libdnnl.so.3"
    status, reason, provider, value = _child(code, **{library.LIBRARY_ENV: str(missing)}).split(" | ")
    assert (status, provider, float(value)) == ("unavailable", "numpy", 18.0)
    assert "oneDNN cannot be loaded" in reason and str(missing) in reason
    not_dnnl = tmp_path / "not-a-library.so"
    not_dnnl.write_bytes(b"\x7fELF nonsense")
    status, reason, provider, _ = _child(code, **{library.LIBRARY_ENV: str(not_dnnl)}).split(" | ")
    assert (status, provider) == ("unavailable", "numpy") and "cannot load" in reason


def test_the_environment_variable_turns_the_provider_off_for_an_a_b_run():
    code = ("import numpy as np, opdispatch as od\n"
            "x, w = od.tensor(np.ones((1, 2, 5, 5), np.float32)), od.tensor(np.ones((3, 2, 3, 3), np.float32))\n"
            "print(od.providers()['onednn'].enabled, od.explain('conv2d', x, w).provider)")
    assert _child(code, OPDISPATCH_DISABLE_PROVIDERS="onednn") == "False numpy"
    assert _child(code, OPDISPATCH_DISABLE_PROVIDERS="") == "True onednn"


def test_conformance_checks_the_onednn_kernels():
    from opdispatch_conformance.runner import FAILED, PASSED
    from opdispatch_conformance.suite import collect_cases, run_device

    ops = ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"]
    run = run_device(NUMPY, collect_cases(ops, random_per_op=2, onnx=False), out=None)
    mine = [r for r in run["results"] if r.pinned == "onednn"]
    assert {r.op for r in mine} >= set(ops)
    assert not [r for r in run["results"] if r.status == FAILED]
    assert sum(r.status == PASSED for r in mine) > len(ops) * 5
