"""float16 on numpy:0 and opencl:0: stored as float16, computed in float32 (each backend declares a
float16 kernel per op beside its float32/float64 one), and several kernels of one op from one
plugin, allowed when their dtypes are disjoint."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import DeviceInfo, Kernel, ProviderInfo
from opdispatch.registry import Registry
from fake_backends import make_plugin

DEVICES = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]
F16 = np.float16


def _half(shape, seed=0, scale=2.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(F16)


def _in_float32(fn, *arrays):
    """What computing in float32 and rounding once to float16 gives."""
    return np.asarray(fn(*(a.astype(np.float32) for a in arrays))).astype(F16)


@pytest.mark.parametrize("device", DEVICES)
def test_elementwise_reductions_and_matmul_match_numpy_computed_in_float32(device):
    a, b = _half((5, 7)), _half((5, 7), seed=1)
    with od.device(device):
        ta, tb = od.tensor(a), od.tensor(b)
        cases = [
            (od.add(ta, tb), _in_float32(np.add, a, b)),
            (od.tanh(ta), _in_float32(np.tanh, a)),
            (od.exp(ta), _in_float32(np.exp, a)),
            (ta.sum(axis=1), _in_float32(lambda x: x.sum(axis=1), a)),
            (od.matmul(ta, tb.T), _in_float32(lambda x, y: x @ y.T, a, b)),
            (od.softmax(ta, axis=1), _in_float32(lambda x: np.exp(x - x.max(1, keepdims=True))
                                                 / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True), a)),
        ]
        for got, want in cases:
            assert got.dtype == F16 and got.device == od.Device(device)
            np.testing.assert_allclose(got.numpy().astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3)
        # values, layout and comparisons are exact
        np.testing.assert_array_equal((ta > tb).numpy(), a > b)
        assert (ta > tb).dtype == np.bool_ and od.argmax(ta).dtype == np.int64
        assert int(od.argmax(ta).item()) == int(np.argmax(a))
        np.testing.assert_array_equal(ta[1:4, ::2].numpy(), a[1:4, ::2])
        np.testing.assert_array_equal(ta.reshape(7, 5).numpy(), a.reshape(7, 5))
        np.testing.assert_array_equal(od.concat([ta, tb], axis=0).numpy(), np.concatenate([a, b]))


@pytest.mark.parametrize("device", DEVICES)
def test_casts_to_and_from_float16_round_as_numpy(device):
    values = np.array([0.1, -2.5, 65504.0, 70000.0, 1e-8, 6e-8, np.inf, -np.inf, np.nan, 0.0, -0.0, 1 / 3])
    with od.device(device), np.errstate(over="ignore"):  # 70000 overflows to inf, in NumPy too
        for src in ("float32", "float64"):
            got = od.tensor(values.astype(src)).astype("float16").numpy()
            np.testing.assert_array_equal(got, values.astype(src).astype(F16))
        h = od.tensor(values.astype(F16))
        for dst in ("float32", "float64", "int32", "bool"):
            finite = values.astype(F16)[np.isfinite(values.astype(F16))] if dst == "int32" else values.astype(F16)
            np.testing.assert_array_equal(od.tensor(finite).astype(dst).numpy(), finite.astype(dst))
        np.testing.assert_array_equal(h.astype("float16").numpy(), values.astype(F16))
        np.testing.assert_array_equal(od.tensor(np.arange(-5, 6, dtype=np.int64)).astype("float16").numpy(),
                                      np.arange(-5, 6).astype(F16))


@pytest.mark.parametrize("device", DEVICES)
def test_a_small_cnn_runs_in_float16_eagerly_in_graph_mode_and_under_the_tape(device):
    x, w = _half((2, 3, 8, 8), scale=1.0), _half((4, 3, 3, 3), seed=2, scale=0.3)
    with od.device(device):
        tx, tw = od.tensor(x), od.tensor(w)

        def net(x, w):
            return od.max_pool2d(od.relu(od.conv2d(x, w, padding=1)), 2).mean()

        want = float(net(od.tensor(x.astype(np.float32)), od.tensor(w.astype(np.float32))).item())
        eager = net(tx, tw)
        graph = od.function(net)(tx, tw)
        assert eager.dtype == graph.dtype == F16
        assert abs(float(eager.item()) - want) < 5e-3
        assert float(graph.item()) == pytest.approx(float(eager.item()), abs=2e-3)
        with od.GradientTape() as tape:
            tape.watch(tw)
            loss = net(tx, tw)
        (gw,) = tape.gradient(loss, [tw])
        assert gw.dtype == F16 and gw.shape == w.shape
        with od.GradientTape() as tape32:
            w32 = od.tensor(w.astype(np.float32))
            tape32.watch(w32)
            loss32 = net(od.tensor(x.astype(np.float32)), w32)
        (gw32,) = tape32.gradient(loss32, [w32])
        np.testing.assert_allclose(gw.numpy().astype(np.float32), gw32.numpy(), atol=3e-3)


def test_the_float32_calls_run_the_unwrapped_kernel():
    """float32 keeps its own (fast-path) kernel; only float16 goes through the float32 detour."""
    import opdispatch_numpy.plugin as numpy_plugin

    relus = [k for k in numpy_plugin.opdispatch_kernels() if k.op == "relu"]
    assert sorted(tuple(sorted(d.name for d in k.dtype_set)) for k in relus) == [("float16",), ("float32", "float64")]
    named = {op: fn for family in numpy_plugin.FAMILIES for op, fn in family.KERNELS.items()}
    plain = next(k for k in relus if np.dtype("float32") in k.dtype_set)
    half = next(k for k in relus if np.dtype("float16") in k.dtype_set)
    assert plain.fn is named["relu"] and half.fn.__wrapped__ is named["relu"]


def test_opdispatch_devices_says_float16_is_computed_in_float32():
    out = subprocess.run([sys.executable, "-m", "opdispatch.cli", "devices"], capture_output=True, text=True,
                         check=True)
    line = next(ln for ln in out.stdout.splitlines() if "numpy:0" in ln)
    assert "float16 computed in float32" in line and "float16, float32, float64" in line


def _relu32(x):
    return np.maximum(x, 0)


def _relu16(x):
    return np.maximum(x.astype(np.float32), 0).astype(np.float16) + np.float16(0)


def test_a_backend_may_declare_one_kernel_per_dtype_and_the_call_dtype_picks_it():
    reg = Registry()
    calls = []

    def k32(x):
        calls.append("32")
        return _relu32(x)

    def k16(x):
        calls.append("16")
        return _relu16(x)

    status = reg.add_plugin(make_plugin("halves", [Kernel("relu", k32, dtypes=("float32",)),
                                                   Kernel("relu", k16, dtypes=("float16",))],
                                        devices=[DeviceInfo(0, dtypes=("float16", "float32"))]), name="halves")
    assert status.status == "loaded", status.reason
    rt = reg.runtime(od.Device("halves:0"))
    assert [tuple(sorted(d.name for d in e.kernel.dtype_set)) for e in rt.candidates["relu"]] == [("float32",),
                                                                                                   ("float16",)]
    assert rt.fast[("relu", np.dtype("float16"))] is k16 and rt.fast[("relu", np.dtype("float32"))] is k32


def test_two_kernels_of_one_op_with_shared_dtypes_are_refused_naming_them():
    reg = Registry()
    status = reg.add_plugin(make_plugin("twice", [Kernel("relu", _relu32, dtypes=("float32", "float64")),
                                                  Kernel("relu", _relu32, dtypes=("float64",))]), name="twice")
    assert status.status == "failed"
    assert "two kernels for op 'relu' that both compute in float64" in status.reason
    assert "disjoint dtypes" in status.reason


def test_a_provider_may_declare_one_kernel_per_dtype_but_not_overlapping_ones(clean_registry):
    class Provider:
        def __init__(self, name, kernels):
            self.name, self.kernels_ = name, kernels

        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name=self.name, priority=10)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return self.kernels_

    ok = od.register_plugin(Provider("perdtype", [Kernel("relu", _relu32, dtypes=("float32",), backend="numpy"),
                                                  Kernel("relu", _relu16, dtypes=("float16",), backend="numpy")]))
    assert ok.status == "loaded", ok.reason
    assert [r.provider for r in od.kernels("numpy:0", "relu")][:2] == ["perdtype", "perdtype"]
    bad = od.register_plugin(Provider("overlap", [Kernel("relu", _relu32, dtypes=("float32",), backend="numpy"),
                                                  Kernel("relu", _relu32, dtypes=("float32",), backend="numpy")]))
    assert bad.status == "failed" and "on backend 'numpy' that both compute in float32" in bad.reason


def test_an_unsupported_dtype_names_each_source_once_with_all_its_dtypes(clean_registry):
    od.register_plugin(make_plugin("split", [Kernel("relu", _relu32, dtypes=("float32",)),
                                             Kernel("relu", _relu16, dtypes=("float16",))],
                                   devices=[DeviceInfo(0, dtypes=("float16", "float32", "float64"))]))
    with pytest.raises(od.UnsupportedError) as info:
        od.relu(od.tensor(np.ones(2), device="split:0"))
    message = str(info.value)
    assert "the relu kernel of 'split' supports float16, float32, not float64" in message
    assert message.count("'split'") == 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "int32", "int64", "bool"])
def test_the_view_ops_keep_every_dtype_they_move(device, dtype):
    """reshape and flatten (views on OpenCL) take float16 as it is, beside the int and bool dtypes."""
    a = (np.arange(24) % 3).astype(dtype).reshape(2, 3, 4)
    t = od.tensor(a, device=device)
    np.testing.assert_array_equal(od.reshape(t, (4, 6)).numpy(), a.reshape(4, 6))
    np.testing.assert_array_equal(od.flatten(t).numpy(), a.reshape(2, 12))
    assert od.reshape(t, (4, 6)).dtype == np.dtype(dtype)
