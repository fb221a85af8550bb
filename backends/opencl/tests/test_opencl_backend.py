"""The OpenCL backend (backends/opencl): device discovery, the no-platform case, program caching,
error translation, and device-resident results. The op-by-op accuracy is the conformance suite's
job (``opdispatch conformance --device opencl:0``); a small subset runs here as a smoke test."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import BackendUnavailable
from opdispatch.errors import KernelError, OpDispatchError
from opdispatch.registry import Registry

cl = pytest.importorskip("pyopencl", reason="pyopencl is not installed (pip install 'opdispatch-opencl[pocl]')")
plugin = pytest.importorskip("opdispatch_opencl.plugin", reason="opdispatch-opencl is not installed")

from opdispatch_opencl import arrays, errors, runtime  # noqa: E402


def _has_platform() -> bool:
    try:
        return bool(runtime.probe())
    except Exception:
        return False


needs_device = pytest.mark.skipif(not _has_platform(), reason="no OpenCL platform/device on this machine "
                                                               "(install PoCL: pip install 'pyopencl[pocl]')")
DEV = "opencl:0"


# -- discovery -------------------------------------------------------------------------------------

@needs_device
def test_every_device_is_listed_in_a_stable_order():
    infos = plugin.opdispatch_devices()
    assert [d.index for d in infos] == list(range(len(infos)))
    assert [d.name for d in plugin.opdispatch_devices()] == [d.name for d in infos]
    found = runtime.probe()
    assert len(found) == len(infos)
    for info, (_, device) in zip(infos, found):
        has_fp64 = "cl_khr_fp64" in device.extensions.split()
        assert (np.dtype("float64") in info.dtype_set) == has_fp64
        assert np.dtype("float32") in info.dtype_set
        assert info.driver["driver version"] == " ".join(device.driver_version.split())
        assert info.driver["platform version"] == " ".join(device.platform.version.split())
        assert info.driver["device version"] == " ".join(device.version.split())
        assert info.driver["pyopencl"] == cl.VERSION_TEXT


@needs_device
def test_backend_is_loaded_with_a_kernel_or_a_decomposition_for_every_op():
    status = od.backends()["opencl"]
    assert status.status == "loaded"
    assert od.Device(DEV) in od.devices()
    from opdispatch.ops import OPS

    assert set(status.ops) <= set(OPS)
    assert {op for op in OPS if op not in status.ops} <= {op for op, s in OPS.items() if s.decomposition is not None}


def test_no_platform_makes_the_backend_unavailable(monkeypatch):
    def no_platform():
        raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(cl, "get_platforms", no_platform)
    with pytest.raises(BackendUnavailable, match="no OpenCL platform"):
        plugin.opdispatch_devices()
    status = Registry().add_plugin(plugin, name="opencl")
    assert status.status == "unavailable"
    assert "PLATFORM_NOT_FOUND_KHR" in status.reason
    assert status.devices == ()


def test_platform_without_devices_is_unavailable(monkeypatch):
    monkeypatch.setattr(cl, "get_platforms", lambda: [])
    with pytest.raises(BackendUnavailable, match="no device"):
        plugin.opdispatch_devices()


def test_importing_the_plugin_does_not_import_pyopencl():
    code = "import sys, opdispatch_opencl.plugin; print('pyopencl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- program cache ---------------------------------------------------------------------------------

def test_pocl_cache_dir_gets_a_default(monkeypatch, tmp_path):
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = runtime.configure_cache()
    assert path == str(tmp_path / "opdispatch-opencl" / "pocl")
    assert os.environ[runtime.CACHE_ENV] == path and os.path.isdir(path)


def test_pocl_cache_dir_set_by_the_user_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "mine"))
    assert runtime.configure_cache() == str(tmp_path / "mine")


@needs_device
def test_programs_are_built_once_per_family_and_dtype(monkeypatch):
    dev = runtime.state(0)
    builds = []
    real = runtime.DeviceState._build
    monkeypatch.setattr(runtime.DeviceState, "_build",
                        lambda self, family, options: builds.append((family, options)) or real(self, family, options))
    x = od.tensor(np.random.rand(2, 3, 5, 5).astype(np.float32), device=DEV)
    w = od.tensor(np.random.rand(4, 3, 3, 3).astype(np.float32), device=DEV)
    for shape_pad in (0, 1, "SAME"):
        od.relu(od.conv2d(x, w, padding=shape_pad)).numpy()
    first = len(builds)
    for size in (3, 4, 6):  # other shapes reuse the same programs
        xs = od.tensor(np.random.rand(1, 3, size, size).astype(np.float32), device=DEV)
        od.relu(od.conv2d(xs, w, padding=1)).numpy()
    assert len(builds) == first
    assert len(set(builds)) == len(builds)
    assert dev.program("elementwise", runtime.dtype_options("float32")) is \
        dev.program("elementwise", runtime.dtype_options("float32"))


@pytest.mark.slow
@needs_device
def test_a_second_process_reuses_the_on_disk_cache(tmp_path):
    code = ("import time, numpy as np, opdispatch as od; t = time.perf_counter(); "
            "x = od.tensor(np.ones((4, 4), np.float32), device='opencl:0'); od.sum(od.exp(x)).numpy(); "
            "print(time.perf_counter() - t)")
    env = dict(os.environ, POCL_CACHE_DIR=str(tmp_path))
    cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout.split()[-1])
    warm = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout.split()[-1])
    assert any(tmp_path.iterdir())
    assert warm < cold


# -- errors ----------------------------------------------------------------------------------------

@needs_device
def test_build_failure_is_a_kernel_error_with_the_build_log(monkeypatch):
    dev = runtime.state(0)
    monkeypatch.setitem(runtime._SOURCES, "broken", "__kernel void k(__global T* y) { y[0] = undefined_name; }")
    scoped = errors.op_scope("relu", lambda: dev.program("broken", "-D T=float"))
    with pytest.raises(errors.OpenCLBuildError) as info:
        scoped()
    message = str(info.value)
    assert isinstance(info.value, KernelError)
    assert "relu" in message and "opencl:0" in message and "broken.cl" in message
    assert "undefined_name" in message  # the build log


@needs_device
def test_invalid_work_group_size_is_a_launch_error():
    dev = runtime.state(0)
    knl = dev.kernel("elementwise", "relu_k", runtime.dtype_options("float32"))
    x = arrays.from_numpy(np.ones(4, np.float32), 0)
    too_big = dev.max_work_group * 2
    with pytest.raises(errors.OpenCLLaunchError, match="relu_k.*opencl:0|opencl:0.*INVALID_WORK"):
        errors.op_scope("relu", dev.launch)(knl, (too_big,), (too_big,), x.buf, x.buf, np.int32(4))


@needs_device
def test_out_of_memory_is_an_opdispatch_error():
    dev = runtime.state(0)
    huge = int(dev.cl_device.max_mem_alloc_size) * 4
    with pytest.raises(errors.OpenCLError) as info:
        errors.op_scope("conv2d", dev.alloc)(huge)
    assert "conv2d" in str(info.value) and "opencl:0" in str(info.value)
    # beyond the device's largest single allocation: INVALID_BUFFER_SIZE is running out of memory too
    assert isinstance(info.value, errors.OpenCLOutOfMemoryError), info.value


@needs_device
def test_declared_limits_are_unsupported_before_any_kernel_and_a_fallback_can_route_around_them():
    x = od.tensor(np.random.default_rng(0).random((2,) * 9), device=DEV)
    with pytest.raises(od.UnsupportedError, match=r"transpose: cannot run on opencl:0: tensors of rank 9"):
        od.transpose(x)
    with pytest.warns(od.PlacementWarning, match="ran on numpy:0"):
        with od.device(None, fallback="warn"):
            y = od.transpose(x)
    assert y.device == od.Device(DEV)
    np.testing.assert_array_equal(y.numpy(), np.transpose(x.numpy()))
    assert od.reshape(x, (4,) * 4 + (2,)).device == od.Device(DEV)  # views have no rank limit


@needs_device
def test_op_errors_name_the_op_and_device(monkeypatch):
    def failing(self, knl, *args):
        raise errors.translate(cl.RuntimeError("clEnqueueNDRangeKernel failed: OUT_OF_RESOURCES"), self.label,
                                knl.function_name)

    monkeypatch.setattr(runtime.DeviceState, "launch", failing)
    with pytest.raises(OpDispatchError) as info:
        od.exp(od.tensor(np.ones(3, np.float32), device=DEV))
    assert isinstance(info.value, errors.OpenCLOutOfMemoryError)
    assert "exp" in str(info.value) and "exp_k" in str(info.value) and "opencl:0" in str(info.value)


# -- arrays and results ----------------------------------------------------------------------------

@needs_device
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 3), (2, 3, 4)])
def test_round_trip(shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    t = od.tensor(a, device=DEV)
    assert isinstance(t.data, arrays.CLArray)
    np.testing.assert_array_equal(t.numpy(), a)
    assert t.numpy().shape == shape


@needs_device
def test_results_stay_on_the_device():
    x = od.tensor(np.random.rand(2, 3, 4).astype(np.float32), device=DEV)
    r = od.relu(x)
    y = od.reshape(r, (6, 4))
    assert isinstance(y.data, arrays.CLArray) and y.device == od.Device(DEV)
    assert y.data.buf is r.data.buf  # reshape is a view of the same device buffer


@needs_device
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_smoke_against_numpy(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    rtol = 1e-4 if dtype == "float32" else 1e-10
    for fn in (lambda d: od.conv2d(d(x), d(w), padding="SAME", stride=2),
               lambda d: od.max_pool2d(d(x), 3, stride=2, padding=1, ceil_mode=True),
               lambda d: od.avg_pool2d(d(x), 2, count_include_pad=False, padding=1),
               lambda d: od.softmax(d(x), axis=1),
               lambda d: od.sum(d(x), axis=(0, 2), keepdims=True),
               lambda d: od.matmul(d(x), od.transpose(d(x), (0, 1, 3, 2))),
               lambda d: od.add(d(x), d(x[0, :, :1, :])),
               lambda d: od.batch_norm(d(x), d(np.zeros(3, dtype)), d(np.ones(3, dtype)), training=True)[0]):
        got = fn(lambda a: od.tensor(a, device=DEV)).numpy()
        want = fn(lambda a: od.tensor(a, device="numpy:0")).numpy()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@needs_device
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "uint8"])
def test_cross_entropy_labels_keep_their_integer_dtype(label_dtype):
    logits = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3], dtype=label_dtype)
    got = od.softmax_cross_entropy(od.tensor(logits, device=DEV), od.tensor(labels, device=DEV))
    want = od.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)


@needs_device
def test_gradients_run_on_the_device():
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w_np = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    grads = {}
    for dev in (DEV, "numpy:0"):
        x, w = od.tensor(x_np, device=dev), od.tensor(w_np, device=dev)
        with od.GradientTape() as tape:
            tape.watch(x)
            tape.watch(w)
            loss = od.sum(od.max_pool2d(od.relu(od.conv2d(x, w, padding=1)), 2))
        grads[dev] = tape.gradient(loss, [x, w])
    for got, want in zip(grads[DEV], grads["numpy:0"]):
        assert got.device == od.Device(DEV)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


@needs_device
def test_conv_kernels_agree_with_the_reference_when_the_images_are_chunked(monkeypatch):
    from opdispatch_conformance.runner import FAILED
    from opdispatch_conformance.suite import collect_cases, run_device
    from opdispatch_opencl import conv

    monkeypatch.setattr(conv, "COLS_BUDGET", 1)  # one image per column buffer
    ops = ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"]
    run = run_device(od.Device(DEV), collect_cases(ops, random_per_op=5, onnx=False), dtypes=["float32"], out=None,
                     gradients="no")
    assert [r.case for r in run["results"] if r.status == FAILED] == []


class _FakeDevice:
    def __init__(self, name: str) -> None:
        self.name = name
        self.extensions = "cl_khr_fp64"


class _FakePlatform:
    name, vendor = "Fake CL", "fake"

    def __init__(self, version: str, devices: list) -> None:
        self.version = version
        self._devices = devices

    def get_devices(self) -> list:
        return self._devices


def test_a_device_whose_compiler_fails_is_left_out_with_the_reason(monkeypatch):
    broken, working = _FakeDevice("broken cpu"), _FakeDevice("working cpu")

    class Program:
        def __init__(self, ctx, src):
            self.device = ctx

        def build(self, *args, **kwargs):
            if self.device is broken:
                raise cl.RuntimeError("clBuildProgram failed: error: unknown target CPU 'generic'")
            return self

    monkeypatch.setattr(cl, "get_platforms", lambda: [_FakePlatform("3.0", [broken]), _FakePlatform("3.1", [working])])
    monkeypatch.setattr(cl, "Context", lambda devices: devices[0])
    monkeypatch.setattr(cl, "Program", Program)
    monkeypatch.setattr(runtime, "_COMPILES", {})
    assert [d for _, d in runtime.probe()] == [working]
    assert "unknown target CPU 'generic'" in runtime.rejected()[0]
    assert [d.index for d in plugin.opdispatch_devices()] == [0]  # the working device is opencl:0


def test_no_device_that_compiles_makes_the_backend_unavailable_with_the_reason(monkeypatch):
    class Program:
        def __init__(self, ctx, src):
            pass

        def build(self, *args, **kwargs):
            raise cl.RuntimeError("clBuildProgram failed: error: unknown target CPU 'generic'")

    monkeypatch.setattr(cl, "get_platforms", lambda: [_FakePlatform("3.0", [_FakeDevice("cpu")])])
    monkeypatch.setattr(cl, "Context", lambda devices: devices[0])
    monkeypatch.setattr(cl, "Program", Program)
    monkeypatch.setattr(runtime, "_COMPILES", {})
    with pytest.raises(BackendUnavailable, match="no OpenCL device can compile kernels.*unknown target CPU"):
        plugin.opdispatch_devices()


@needs_device
def test_the_conformance_suite_passes_on_opencl_0():
    """The whole suite (forward and gradients, every dtype the device has) on this backend's own device."""
    from opdispatch.ops import OPS
    from opdispatch_conformance import report
    from opdispatch_conformance.runner import FAILED
    from opdispatch_conformance.suite import collect_cases, run_device

    run = run_device(od.Device(DEV), collect_cases(random_per_op=5), out=None)
    failed = [r for r in run["results"] if r.status == FAILED]
    assert not failed, report.failures_text(failed)
    assert {r.op for r in run["results"]} >= set(OPS)
