"""The CuPy backend (backends/cupy).

Three layers, so that what each proves is clear:

* simulated: the backend's own kernel table, the very functions the plugin declares, registered
  as an in-process device ``cupysim:0`` whose arrays are NumPy arrays. The kernels are written
  against an array module ``xp`` (CuPy for CuPy arrays, NumPy otherwise), so this runs every
  kernel's code on the CPU through the full conformance suite. It is not a GPU run.
* unavailable: on a machine without a usable GPU the installed ``cupy`` backend is reported
  "unavailable" with the reason, and importing the plugin never imports CuPy.
* GPU: the full conformance suite and placement checks on ``cupy:0``; skipped, with the reason,
  where there is no usable CUDA device.
"""

from __future__ import annotations

import collections
import importlib.util
import inspect
import subprocess
import sys
import types

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import BackendUnavailable
from opdispatch_conformance.runner import FAILED, PASSED
from opdispatch_conformance.suite import collect_cases, run_device
from opdispatch.ops import OPS
from opdispatch.plugins import check_kernel

plugin = pytest.importorskip("opdispatch_cupy.plugin", reason="opdispatch-cupy is not installed (pip install -e "
                                                                "backends/cupy)")
from opdispatch_cupy import runtime, xp as xpmod  # noqa: E402
from opdispatch_cupy.kernels.table import kernel_functions, kernels  # noqa: E402
from opdispatch_cupy.simulate import SimulatedPlugin  # noqa: E402

HAS_CUPY = importlib.util.find_spec("cupy") is not None


def _gpu_reason() -> "str | None":
    """None when CuPy sees a usable CUDA device, else why not."""
    if not HAS_CUPY:
        return "CuPy is not installed"
    try:
        runtime.probe_devices()
    except BackendUnavailable as exc:
        return str(exc)
    return None


GPU_REASON = _gpu_reason()
requires_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"needs a CUDA GPU: {GPU_REASON}")
SIM = od.Device("cupysim:0")


@pytest.fixture
def sim(clean_registry):
    status = od.register_plugin(SimulatedPlugin(), name="cupysim")
    assert status.status == "loaded", status
    return SIM


# --- the kernel table -------------------------------------------------------------------------------

def test_every_op_has_a_kernel_in_every_dtype():
    declared = {k.op: k for k in plugin.opdispatch_kernels()}
    assert set(declared) <= set(OPS)
    assert {op for op in OPS if op not in declared} <= {op for op, s in OPS.items() if s.decomposition is not None}
    for k in declared.values():
        check_kernel(k)  # the signature fits the schema (the wrapper keeps the kernel's signature)
        assert {d.name for d in k.dtype_set if d.kind == "f"} == {"float16", "float32", "float64"}
        assert {d.name for d in k.dtype_set if d.kind != "f"} <= {"int32", "int64", "bool"}
        assert k.fn.__wrapped__ is kernel_functions()[k.op]


def test_kernel_modules_do_not_import_cupy():
    code = ("import sys, opdispatch_cupy.plugin as p; p.opdispatch_kernels(); p.opdispatch_backend_info(); "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_array_module_is_numpy_for_numpy_arrays():
    a = np.ones(3)
    assert xpmod.array_module(a, None, 1.0) is np and not xpmod.is_cupy(a)


def test_kernels_run_on_the_device_of_their_first_input(monkeypatch):
    """The wrapper enters ``with array.device`` for CuPy arrays (a stand-in CuPy module here)."""
    entered = []

    class FakeDevice:
        def __init__(self, index):
            self.id = index

        def __enter__(self):
            entered.append(self.id)

        def __exit__(self, *exc):
            return False

    class FakeArray:
        shape, dtype = (1,), np.dtype("float32")

        def __init__(self, index):
            self.device = FakeDevice(index)

    fake_cupy = types.SimpleNamespace(ndarray=FakeArray, asarray=lambda a: a)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    modules = []
    fn = xpmod.kernel(lambda a, b: modules.append(xpmod.array_module(a, b)) or a)
    a = FakeArray(3)
    assert fn(a, FakeArray(3)) is a
    assert entered == [3] and modules == [fake_cupy]


def test_simulate_command_runs_the_conformance_cli(clean_registry, capsys):
    from opdispatch_cupy.simulate import main

    assert main(["--ops", "relu,max_pool2d", "--no-onnx", "--random", "1", "--dtypes", "float32"]) == 0
    assert "cupysim:0" in capsys.readouterr().out


def test_float16_is_computed_in_float32_and_returned_in_float16():
    seen = []

    def spy(x, *, axis):
        seen.append(x.dtype)
        return x.sum(axis=axis)

    out = xpmod.kernel(spy)(np.full(5000, 1.0, np.float16), axis=None)
    assert seen == [np.float32] and out.dtype == np.float16 and out.shape == () and float(out) == 5000.0


def test_kernels_return_arrays_not_scalars():
    fn = kernel_functions()
    wrapped = {k.op: k.fn for k in kernels()}
    assert not isinstance(fn["sum"](np.ones(3, np.float32), axis=(0,), keepdims=False), np.ndarray)
    out = wrapped["sum"](np.ones(3, np.float32), axis=(0,), keepdims=False)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == ()


# --- the simulated conformance run: every kernel's code, on the CPU ---------------------------------

@pytest.mark.parametrize("dtypes", [["float32", "float64"], pytest.param(["float16"], marks=pytest.mark.slow)])
def test_simulated_full_conformance_suite_passes(sim, dtypes):
    run = run_device(sim, collect_cases(random_per_op=10), dtypes=dtypes, out=None)
    counts = collections.Counter(r.status for r in run["results"])
    bad = [f"{r.op} {r.dtype} {r.case}: {r.message}" for r in run["results"] if r.status != PASSED]
    assert not bad, f"{counts}: " + "\n".join(bad[:20])
    assert {r.op for r in run["results"]} >= set(OPS)  # every op ran (plus its gradient checks)


def _both(op, *args, **attrs):
    """The simulated kernel's result and the float64 reference's."""
    got = {k.op: k.fn for k in kernels()}[op](*args, **attrs)
    want = OPS[op].reference(*args, **attrs)
    return got, want


@pytest.mark.parametrize("fill", [1.0, -np.inf, np.nan])
def test_max_pool_backward_ties_go_to_the_first_maximum(fill):
    x = np.full((1, 1, 4, 5), fill, np.float64)
    x[0, 0, 1, 2] = np.nan if fill == 1.0 else x[0, 0, 1, 2]
    dy_shape = (1, 1) + od.max_pool2d(x, 3, stride=1, padding=1).shape[2:]
    dy = np.arange(np.prod(dy_shape), dtype=np.float64).reshape(dy_shape) + 1
    attrs = dict(kernel_size=(3, 3), stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), ceil_mode=False)
    got, want = _both("max_pool2d_backward", x, dy, **attrs)
    np.testing.assert_array_equal(got, want)


def test_max_pool_backward_dilated_window_in_padding_passes_nothing():
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3))
    attrs = dict(kernel_size=(2, 2), stride=(3, 3), padding=((2, 2), (2, 2)), dilation=(3, 3), ceil_mode=False)
    out = OPS["max_pool2d"].infer("max_pool2d", [od.schema.TensorMeta(x.shape, x.dtype)],
                                  OPS["max_pool2d"].normalize(attrs))[0][0]
    dy = np.ones(out.shape)
    got, want = _both("max_pool2d_backward", x, dy, **attrs)
    np.testing.assert_allclose(got, want)


def test_max_backward_splits_ties_equally():
    x = np.array([[1.0, 3.0, 3.0], [np.nan, 2.0, np.nan]])
    got, want = _both("max_backward", x, np.array([6.0, 4.0]), axis=(1,), keepdims=False)
    np.testing.assert_array_equal(got, want)


# --- the real backend on a machine without a usable GPU ----------------------------------------------

def test_missing_cupy_is_unavailable_not_an_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # 'import cupy' now raises ImportError
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        plugin.opdispatch_devices()
    assert plugin.opdispatch_backend_info().name == "cupy"


def test_cuda_error_becomes_the_reason():
    class FakeRuntime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

        @staticmethod
        def driverGetVersion():
            return 12040

    class FakeCupy:
        cuda = type("cuda", (), {"runtime": FakeRuntime})

        @staticmethod
        def is_available():
            return False

    reason = runtime.unavailable_reason(FakeCupy)
    assert "cudaErrorNoDevice" in reason and "CUDA driver: 12.4" in reason


def test_each_device_records_the_cuda_driver_and_runtime_versions(monkeypatch):
    class FakeRuntime:
        @staticmethod
        def driverGetVersion():
            return 12040

        @staticmethod
        def runtimeGetVersion():
            return 12080

        @staticmethod
        def getDeviceProperties(index):
            return {"name": b"NVIDIA H200", "major": 9, "minor": 0, "totalGlobalMem": 141 * 2**30}

    class FakeCupy:
        cuda = type("cuda", (), {"runtime": FakeRuntime})

    monkeypatch.setattr(runtime, "cupy_version", lambda: "cupy-cuda12x 14.2.0")
    info = runtime._device_info(FakeCupy, 0)
    assert info.driver == {"cuda driver": "12.4", "cuda runtime": "12.8", "cupy": "cupy-cuda12x 14.2.0"}
    assert info.name.startswith("NVIDIA H200 (compute capability 9.0, 141 GiB")


def test_a_gpu_without_the_cuda_libraries_is_unavailable_with_the_install_hint(monkeypatch):
    class FakeCupy:
        @staticmethod
        def is_available():
            return True  # the driver sees a device...

    def no_nvrtc():
        return "RuntimeError: Failure finding libnvrtc.so.12"  # ...but the kernels could not compile

    monkeypatch.setattr(runtime, "missing_libraries", no_nvrtc)
    reason = runtime.unavailable_reason(FakeCupy)
    assert "libnvrtc" in reason and "cuda12x-ctk" in reason
    monkeypatch.setattr(runtime, "missing_libraries", lambda: None)
    assert runtime.unavailable_reason(FakeCupy) is None


@pytest.mark.skipif(not HAS_CUPY, reason="CuPy is not installed (pip install 'opdispatch-cupy[cuda12x]')")
@pytest.mark.skipif(GPU_REASON is None, reason="this machine has a usable CUDA GPU")
def test_installed_backend_reports_unavailable_with_the_reason(clean_registry):
    status = od.backends().get("cupy")
    assert status is not None, "the opdispatch.backends entry point 'cupy' is not installed"
    assert status.status == "unavailable" and status.reason == GPU_REASON
    assert "CUDA" in status.reason
    assert not [d for d in od.devices() if d.backend == "cupy"]
    with pytest.raises(od.errors.DeviceError, match="unavailable"):
        od.tensor([1.0], device="cupy:0")


# --- on a GPU -----------------------------------------------------------------------------------------

GPU = od.Device("cupy:0")


@requires_gpu
@pytest.mark.slow
def test_gpu_full_conformance_suite_passes():
    run = run_device(GPU, collect_cases(random_per_op=10), out=None)
    bad = [f"{r.op} {r.dtype} {r.case}: {r.message}\n{r.repro}" for r in run["results"] if r.status == FAILED]
    assert not bad, "\n".join(bad[:20])
    assert {r.op for r in run["results"] if r.status == PASSED} >= set(OPS)


@requires_gpu
def test_gpu_tensors_stay_on_the_gpu_between_ops():
    import cupy

    rng = np.random.default_rng(0)
    xs, ws, fc = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal((80, 10))

    def forward(dev):
        with od.device(dev):
            x, w = od.tensor(xs, dtype="float32"), od.tensor(ws, dtype="float32")
            h = od.max_pool2d(od.relu(od.conv2d(x, w, padding="SAME")), 2)
            logits = od.matmul(od.flatten(h), od.tensor(fc, dtype="float32"))
            return [x, h, logits, od.softmax_cross_entropy(logits, np.array([0, 1, 2, 3]))]

    on_gpu = forward(GPU)
    for t in on_gpu:
        assert t.device == GPU and isinstance(t.data, cupy.ndarray) and t.data.device.id == 0
    for got, want in zip(on_gpu, forward("numpy:0")):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


@requires_gpu
def test_gpu_gradients_match_the_numpy_backend():
    rng = np.random.default_rng(1)
    xs, ws = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))

    def grads(dev):
        x, w = od.tensor(xs, device=dev), od.tensor(ws, device=dev)
        with od.GradientTape() as tape:
            tape.watch([x, w])
            loss = od.sum(od.avg_pool2d(od.relu(od.conv2d(x, w, stride=2, padding=1)), 2))
        return [g.numpy() for g in tape.gradient(loss, [x, w])]

    for got, want in zip(grads(GPU), grads("numpy:0")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@requires_gpu
def test_gpu_arrays_and_kernels_follow_the_device_index():
    import cupy

    n = cupy.cuda.runtime.getDeviceCount()
    if n < 2:
        pytest.skip(f"needs 2 CUDA devices, this machine has {n}")
    last = od.Device(f"cupy:{n - 1}")
    x = od.tensor(np.ones((2, 3)), device=last)
    y = od.relu(od.matmul(x, od.tensor(np.ones((3, 2)), device=last)))
    assert x.data.device.id == n - 1 and y.data.device.id == n - 1 and y.device == last
    np.testing.assert_array_equal(y.numpy(), np.full((2, 2), 3.0))


def test_kernel_signatures_take_no_device_argument():
    # kernels learn their device from their inputs (see opdispatch_cupy.xp.kernel)
    for k in kernels():
        assert "device" not in inspect.signature(k.fn).parameters
