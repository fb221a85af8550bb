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

L_WEIGHTS = library.ARG_WEIGHTS

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

    ops = ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight", "max_pool2d",
           "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward", "batch_norm", "batch_norm_backward"]
    run = run_device(NUMPY, collect_cases(ops, random_per_op=2, onnx=False), out=None)
    mine = [r for r in run["results"] if r.pinned == "onednn"]
    assert {r.op for r in mine} >= set(ops)
    assert not [r for r in run["results"] if r.status == FAILED]
    assert sum(r.status == PASSED for r in mine) > len(ops) * 5


max_pool2d_backward = od.op_function("max_pool2d_backward")
avg_pool2d_backward = od.op_function("avg_pool2d_backward")
batch_norm_backward = od.op_function("batch_norm_backward")

POOL_CASES = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((2, 3, 9, 10), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 4, 9, 11), {"kernel_size": (3, 2), "stride": (1, 2), "padding": ((1, 0), (1, 1)), "ceil_mode": True}),
    ((2, 2, 7, 7), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),  # overhangs: avg counting padding declines
]


def _pool_data(shape, seed=0):
    # distinct values: max pooling's gradient goes to the window's first maximum, ties aside
    return np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 7


@pytest.mark.parametrize("shape,attrs", POOL_CASES)
def test_pooling_and_its_gradients_agree_with_the_numpy_kernels(shape, attrs):
    x = od.tensor(_pool_data(shape))
    cases = [("max_pool2d", od.max_pool2d, dict(attrs)),
             ("avg_pool2d", od.avg_pool2d, dict(attrs, count_include_pad=False))]
    if shape != (2, 2, 7, 7):
        cases.append(("avg_pool2d", od.avg_pool2d, dict(attrs)))
    if "ceil_mode" not in attrs:
        cases.append(("max_pool2d", od.max_pool2d, dict(attrs, dilation=2, kernel_size=2)))
    for name, fn, kw in cases:
        assert od.explain(name, x, **kw).provider == "onednn", kw
        y = _with("onednn", fn, x, **kw)
        np.testing.assert_allclose(y, _with("numpy", fn, x, **kw), rtol=1e-5, atol=1e-6)
        dy = od.tensor(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
        if name == "max_pool2d":
            back, args, bkw = max_pool2d_backward, (x, dy), kw
        else:
            back, args, bkw = avg_pool2d_backward, (dy,), dict(kw, input_shape=x.shape)
        assert od.explain(back.__name__, *args, **bkw).provider == "onednn"
        np.testing.assert_allclose(_with("onednn", back, *args, **bkw), _with("numpy", back, *args, **bkw),
                                   rtol=1e-5, atol=1e-6)


def test_max_pooling_keeps_nan_and_sends_its_gradient_to_it():
    xa = _pool_data((1, 2, 4, 4))
    xa[0, 1, 1, 0] = np.nan
    x, dy = od.tensor(xa), od.tensor(np.ones((1, 2, 2, 2), np.float32))
    y = _with("onednn", od.max_pool2d, x, 2)
    assert np.isnan(y[0, 1, 0, 0]) and np.isnan(y).sum() == 1
    dx = _with("onednn", max_pool2d_backward, x, dy, kernel_size=2)
    assert dx[0, 1, 1, 0] == 1 and dx[0, 1, :2, :2].sum() == 1
    np.testing.assert_array_equal(dx, _with("numpy", max_pool2d_backward, x, dy, kernel_size=2))


def test_average_pooling_declines_a_ceil_mode_overhang_counted_as_padding():
    x = od.tensor(_pool_data((1, 2, 7, 7)))
    kw = {"kernel_size": 2, "stride": 2, "ceil_mode": True}
    plan = od.explain("avg_pool2d", x, **kw)  # the last window overhangs by one
    assert plan.provider == "numpy" and "ceil_mode" in dict(plan.candidates)["onednn"]
    assert od.explain("avg_pool2d", x, **kw, count_include_pad=False).provider == "onednn"
    assert od.explain("avg_pool2d", od.tensor(_pool_data((1, 2, 8, 8))), **kw).provider == "onednn"  # no overhang


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 5, 6), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_and_its_gradient_agree_with_the_numpy_kernels(shape, training, affine):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = od.tensor((rng.standard_normal(shape) * 3 + 1).astype(np.float32))
    rm, rv = od.tensor(rng.standard_normal(c).astype(np.float32)), od.tensor(rng.uniform(0.5, 2, c).astype(np.float32))
    w, b = (od.tensor(rng.standard_normal(c).astype(np.float32)) for _ in range(2))
    args = (x, rm, rv, w, b) if affine else (x, rm, rv)
    kw = {"training": training, "momentum": 0.3, "eps": 1e-3}
    assert od.explain("batch_norm", *args, **kw).provider == "onednn"
    for provider_out, numpy_out in zip(*(_outputs(p, od.batch_norm, *args, **kw) for p in ("onednn", "numpy"))):
        np.testing.assert_allclose(provider_out, numpy_out, rtol=1e-4, atol=1e-5)
    dy = od.tensor(rng.standard_normal(shape).astype(np.float32))
    bargs = (x, dy, rm, rv, w) if affine else (x, dy, rm, rv)
    bkw = {"training": training, "eps": 1e-3}
    assert od.explain("batch_norm_backward", *bargs, **bkw).provider == "onednn"
    for got, want in zip(*(_outputs(p, batch_norm_backward, *bargs, **bkw) for p in ("onednn", "numpy"))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _outputs(provider, fn, *args, **kw):
    with od.use_provider(provider):
        out = fn(*args, **kw)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def test_batch_norm_declines_rank_six():
    x = od.tensor(np.ones((2, 3, 1, 1, 1, 2), np.float32))
    rm, rv = od.tensor(np.zeros(3, np.float32)), od.tensor(np.ones(3, np.float32))
    plan = od.explain("batch_norm", x, rm, rv)
    assert plan.provider == "numpy" and "rank 6" in dict(plan.candidates)["onednn"]


@pytest.mark.parametrize("shape,axis", [((7, 10), -1), ((4, 9, 5), 1), ((3, 4, 5, 6), 0), ((33,), 0)])
def test_softmax_and_log_softmax_agree_with_the_numpy_kernels(shape, axis):
    x = od.tensor((np.random.default_rng(0).standard_normal(shape) * 4).astype(np.float32))
    for name, fn in (("softmax", od.softmax), ("log_softmax", od.log_softmax)):
        assert od.explain(name, x, axis=axis).provider == "onednn"
        np.testing.assert_allclose(_with("onednn", fn, x, axis=axis), _with("numpy", fn, x, axis=axis),
                                   rtol=1e-5, atol=1e-6)


def test_softmax_of_non_finite_input_follows_opdispatchs_rules():
    xa = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [0.0, 1.0, 2.0]], np.float32)
    x = od.tensor(xa)
    for fn in (od.softmax, od.log_softmax):
        np.testing.assert_array_equal(_with("onednn", fn, x, axis=1), _with("numpy", fn, x, axis=1))


def test_conv_transpose2d_beyond_the_deconvolution_runs_on_the_onednn_input_gradient():
    rng = np.random.default_rng(0)
    x = od.tensor(rng.standard_normal((2, 6, 5, 5)).astype(np.float32))
    w = od.tensor(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    b = od.tensor(rng.standard_normal(4).astype(np.float32))
    kw = {"stride": 2, "padding": 0, "output_padding": 1, "groups": 2}  # output_padding beyond the padding
    before = CACHE.built
    plan = od.explain("conv_transpose2d", x, w, b, **kw)
    assert plan.how == "decomposition"
    assert "right padding would be negative" in dict(plan.candidates)["onednn"]
    assert [(p.op, p.provider) for p in plan.parts][0] == ("conv2d_backward_input", "onednn")
    y = od.conv_transpose2d(x, w, b, **kw).numpy()
    assert CACHE.built == before + 1  # its conv2d_backward_input primitive, built for explain's supports()
    np.testing.assert_allclose(y, _with("numpy", od.conv_transpose2d, x, w, b, **kw), rtol=1e-4, atol=1e-4)


def test_a_call_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    from opdispatch_numpy import scratch

    x, w, b = (od.tensor(a) for a in _arrays((4, 16, 40, 40), (16, 16, 5, 5)))
    od.conv2d(x, w, b, padding=2)  # the primitive exists; the refusal concerns this call's memory only
    monkeypatch.setattr(scratch, "available_bytes", lambda: 64 << 10)
    monkeypatch.setattr(scratch, "CHECK_BYTES", 0)
    with pytest.raises(od.KernelError) as info:
        od.conv2d(x, w, b, padding=2)
    assert isinstance(info.value, MemoryError)
    assert "conv2d: the oneDNN kernel needs" in str(info.value) and "allowed: calls that fit" in str(info.value)


def test_max_pooling_declines_a_dilated_window_of_padding_only():
    x = od.tensor(np.full((1, 1, 1, 1), 5.75, np.float32))
    kw = {"kernel_size": 2, "padding": 1, "dilation": 2}  # each window's taps land left and right of the pixel
    plan = od.explain("max_pool2d", x, **kw)
    assert plan.provider == "numpy" and "only padding" in dict(plan.candidates)["onednn"]
    assert np.isneginf(od.max_pool2d(x, **kw).numpy()).all()


def test_weights_are_reordered_once_per_weight_array_and_forgotten_with_it():
    import gc

    xa, wa, ba = _arrays((2, 16, 10, 10), (32, 16, 3, 3), seed=3)
    x, b = od.tensor(xa), od.tensor(ba)
    w = od.tensor(wa)
    want = _with("numpy", od.conv2d, x, w, b, padding=1)
    attrs = {"stride": (1, 1), "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "groups": 1}
    p = onednn_conv._primitive("conv2d", x.shape, w.shape, attrs, has_bias=True)
    if L_WEIGHTS not in p.constant:
        pytest.skip(f"oneDNN runs this conv on the plain weights ({p.impl}): nothing to reorder")
    made = p.copies_made
    for _ in range(3):
        np.testing.assert_allclose(od.conv2d(x, w, b, padding=1).numpy(), want, rtol=1e-4, atol=1e-4)
    assert p.copies_made == made + 1
    step = od.function(lambda x, w, b: od.conv2d(x, w, b, padding=1))  # graph mode: the same array, no new copy
    np.testing.assert_allclose(step(x, w, b).numpy(), want, rtol=1e-4, atol=1e-4)
    assert p.copies_made == made + 1
    w2 = od.tensor(wa * 2)  # another weight tensor: its own copy, the right result
    np.testing.assert_allclose(od.conv2d(x, w2, b, padding=1).numpy(), 2 * want - ba.reshape(1, -1, 1, 1),
                               rtol=1e-4, atol=1e-4)
    assert p.copies_made == made + 2
    kept = len(p._copies)
    del w, w2, step
    gc.collect()
    assert len(p._copies) <= kept - 2
