"""Workspace memory of the kernels whose scratch grows with the input times the kernel area (im2col in
conv2d and both its gradients): bounded, and a call that cannot fit refused before it allocates.

* NumPy: batch chunks, or bands of output rows when one sample's columns are too large, keep the
  scratch under `scratch.CHUNK_BYTES` (tracemalloc); a call whose output and new scratch exceed the
  memory available raises `NumPyOutOfMemoryError` (an `od.KernelError` and a `MemoryError`).
* CuPy (its kernels run on NumPy here): batch chunks under `memory.CHUNK_BYTES`; too large a call
  raises `CuPyOutOfMemoryError`.
* OpenCL: chunks also under the largest buffer the device allocates; one image's columns larger
  than that, or everything larger than the device's memory, is `OpenCLOutOfMemoryError`.

Pooling and batch norm allocate nothing proportional to the kernel area (see test_pool_unpadded.py).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch_cupy.kernels import conv as cupy_conv
from opdispatch_cupy.kernels import memory as cupy_memory
from opdispatch_cupy.simulate import SimulatedPlugin
from opdispatch_numpy import conv as numpy_conv
from opdispatch_numpy import scratch

MiB = 1 << 20
F32 = np.float32


def _peak(fn) -> tuple[int, object]:
    """Peak bytes allocated while ``fn`` runs (NumPy reports its buffers to tracemalloc), and its result."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return tracemalloc.get_traced_memory()[1] - base, out
    finally:
        tracemalloc.stop()


def _conv_problem(n, c, hw, o, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw), dtype=F32)
    w = rng.standard_normal((o, c, k, k), dtype=F32) * 0.1
    p = k // 2
    attrs = {"stride": (1, 1), "padding": ((p, p), (p, p)), "dilation": (1, 1), "groups": 1}
    dy = rng.standard_normal((n, o, hw, hw), dtype=F32)
    return x, w, dy, attrs


def _calls(module, x, w, dy, attrs):
    """(name, call, output bytes) of conv2d and its two gradients."""
    return [("conv2d", lambda: module.conv2d(x, w, **attrs), dy.nbytes),
            ("conv2d_backward_input", lambda: module.conv2d_backward_input(dy, w, input_shape=x.shape, **attrs),
             x.nbytes),
            ("conv2d_backward_weight", lambda: module.conv2d_backward_weight(x, dy, weight_shape=w.shape, **attrs),
             w.nbytes)]


# -- NumPy ------------------------------------------------------------------------------------------

def test_numpy_scratch_stays_bounded_when_one_sample_is_too_large_alone():
    """One sample's columns (32 x 7 x 7 x 80 x 80 floats: 38 MiB) exceed the chunk budget: bands of
    output rows keep the scratch under it (plus one padded sample)."""
    x, w, dy, attrs = _conv_problem(2, 32, 80, 16, 7)
    per_sample_columns = 32 * 49 * 80 * 80 * 4
    assert per_sample_columns > scratch.CHUNK_BYTES
    padded_sample = 32 * 86 * 86 * 4
    for name, call, out_bytes in _calls(numpy_conv, x, w, dy, attrs):
        scratch.clear()
        peak, _ = _peak(call)
        assert peak - out_bytes <= scratch.CHUNK_BYTES + padded_sample + 2 * MiB, (name, peak / MiB)
    scratch.clear()


def test_numpy_row_bands_give_the_unbanded_results(monkeypatch):
    x, w, dy, attrs = _conv_problem(3, 8, 12, 5, 3, seed=1)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    want = [call() for _, call, _ in _calls(numpy_conv, x64, w64, dy64, attrs)]
    monkeypatch.setattr(scratch, "CHUNK_BYTES", 8 * 9 * 12 * 8 * 2)  # two output rows per band, one sample per chunk
    assert len(scratch.work_chunks(3, 12, 8 * 9 * 12 * 8)[0][2]) == 6
    got = [call() for _, call, _ in _calls(numpy_conv, x64, w64, dy64, attrs)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    ref = OPS["conv2d_backward_weight"].reference(x64, dy64, weight_shape=w.shape, **attrs)
    np.testing.assert_allclose(got[2], ref, rtol=1e-10, atol=1e-10)


def test_work_chunks_cover_every_sample_and_row():
    for n, rows, per_row in ((5, 7, 1), (5, 7, scratch.CHUNK_BYTES // 3), (2, 9, scratch.CHUNK_BYTES * 2), (0, 4, 10)):
        plan = scratch.work_chunks(n, rows, per_row)
        covered = sorted((s, r) for n0, n1, bands in plan for s in range(n0, n1) for r0, r1 in bands
                         for r in range(r0, r1))
        assert covered == [(s, r) for s in range(n) for r in range(rows)]
        m, band = scratch.largest_band(plan)
        assert m * band * per_row <= max(scratch.CHUNK_BYTES, per_row)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"])
def test_numpy_refuses_a_call_that_cannot_fit_before_allocating(monkeypatch, op):
    monkeypatch.setattr(scratch, "available_bytes", lambda: 4 * MiB)
    monkeypatch.setattr(scratch, "CHECK_BYTES", 0)
    scratch.clear()
    x, w, dy, _ = _conv_problem(4, 16, 40, 16, 5)
    args = {"conv2d": (x, w), "conv2d_bias_relu": (x, w), "conv2d_backward_input": (dy, w),
            "conv2d_backward_weight": (x, dy)}[op]
    attrs = {"conv2d_backward_input": {"input_shape": x.shape}, "conv2d_backward_weight": {"weight_shape": w.shape}}
    tensors = [od.tensor(a) for a in args]
    fn = od.op_function(op)
    with od.use_provider("numpy"):  # the NumPy kernel's own check (a kernel provider may need less memory)
        peak, _ = _peak(lambda: pytest.raises(scratch.NumPyOutOfMemoryError, fn, *tensors, padding=2,
                                              **attrs.get(op, {})))
        assert peak < MiB  # refused before the output or the scratch was allocated
        with pytest.raises(od.KernelError) as info:
            fn(*tensors, padding=2, **attrs.get(op, {}))
    assert isinstance(info.value, MemoryError)
    msg = str(info.value)
    assert msg.startswith(f"{op}:") and "GiB of memory is available" in msg and "allowed" in msg, msg


def test_numpy_small_calls_are_not_checked(monkeypatch):
    monkeypatch.setattr(scratch, "available_bytes", lambda: 0)  # would refuse everything
    x, w, dy, attrs = _conv_problem(2, 3, 8, 4, 3)
    for _, call, _ in _calls(numpy_conv, x, w, dy, attrs):
        call()


def test_available_bytes_reads_the_system():
    room = scratch.available_bytes()
    assert room is None or room > 0


@pytest.mark.slow
def test_numpy_peak_memory_on_a_large_plausible_conv():
    """conv 32x64x112x112 with a 7x7 kernel (SAME): the columns of the whole batch would be 4.7 GiB, of one
    sample 147 MiB; the scratch stays under the chunk budget plus one padded sample (measured before
    the row bands: 154 MiB beyond the output, now 35 MiB)."""
    x, w, dy, attrs = _conv_problem(32, 64, 112, 64, 7)
    for name, call, out_bytes in _calls(numpy_conv, x, w, dy, attrs):
        scratch.clear()
        peak, _ = _peak(call)
        assert peak - out_bytes <= scratch.CHUNK_BYTES + 64 * 118 * 118 * 4 + 2 * MiB, (name, peak / MiB)
    scratch.clear()


# -- CuPy kernels (on NumPy) ---------------------------------------------------------------------------

@pytest.fixture
def cupysim(clean_registry):
    status = od.register_plugin(SimulatedPlugin(), name="cupysim")
    assert status.status == "loaded", status
    return od.Device("cupysim:0")


def test_cupy_workspace_is_one_chunk_at_a_time(monkeypatch):
    x, w, dy, attrs = _conv_problem(6, 16, 40, 16, 5)
    per_sample = 16 * 25 * 40 * 40 * 4  # one sample's columns: 2.4 MiB
    whole = 6 * per_sample
    monkeypatch.setattr(cupy_memory, "CHUNK_BYTES", per_sample)  # one sample per chunk
    want = [call() for _, call, _ in _calls(cupy_conv, x.astype(np.float64), w.astype(np.float64),
                                            dy.astype(np.float64), attrs)]
    for (name, call, out_bytes), ref in zip(_calls(cupy_conv, x, w, dy, attrs), want):
        peak, got = _peak(call)
        # one chunk's columns, padded input and GEMM buffers (and their copies), never the whole batch's columns
        assert peak - out_bytes <= 3 * per_sample + MiB < whole, (name, peak / MiB)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_cupy_chunked_conformance(monkeypatch, cupysim):
    from opdispatch_conformance.runner import FAILED
    from opdispatch_conformance.suite import collect_cases, run_device

    monkeypatch.setattr(cupy_memory, "CHUNK_BYTES", 1)  # one sample per chunk: every chunk boundary exercised
    ops = ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"]
    run = run_device(cupysim, collect_cases(ops, random_per_op=5, onnx=False), out=None, gradients="no")
    assert [r.case for r in run["results"] if r.status == FAILED] == []


def test_cupy_refuses_a_call_that_cannot_fit(monkeypatch, cupysim):
    monkeypatch.setattr(cupy_memory, "available_bytes", lambda xp: 4 * MiB)
    monkeypatch.setattr(cupy_memory, "CHECK_BYTES", 0)
    x, w, _, _ = _conv_problem(4, 16, 40, 16, 5)
    with pytest.raises(cupy_memory.CuPyOutOfMemoryError) as info:
        od.conv2d(od.tensor(x, device=cupysim), od.tensor(w, device=cupysim), padding=2)
    assert isinstance(info.value, od.KernelError) and isinstance(info.value, MemoryError)
    assert str(info.value).startswith("conv2d:") and "host memory is free" in str(info.value)


# -- OpenCL ------------------------------------------------------------------------------------------

def _opencl_state():
    if "opencl:0" not in {str(d) for d in od.devices()}:
        pytest.skip("no opencl:0 on this machine")
    from opdispatch_opencl.runtime import state

    return state(0)


def test_opencl_chunks_under_the_largest_buffer(monkeypatch):
    dev = _opencl_state()
    x, w, dy, attrs = _conv_problem(5, 8, 16, 6, 3)
    per_image = 8 * 9 * 16 * 16 * 4
    monkeypatch.setattr(dev, "max_alloc", 2 * per_image + 16)  # two images' columns per chunk (the data fits)
    for op, args, extra in (("conv2d", (x, w), {}), ("conv2d_backward_input", (dy, w), {"input_shape": x.shape}),
                            ("conv2d_backward_weight", (x, dy), {"weight_shape": w.shape})):
        a = dict(attrs, **extra)
        got = od.op_function(op)(*[od.tensor(t, device="opencl:0") for t in args], **a).numpy()
        want = od.op_function(op)(*[od.tensor(t) for t in args], **a).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_opencl_refuses_buffers_the_device_cannot_allocate(monkeypatch):
    dev = _opencl_state()
    x, w, dy, attrs = _conv_problem(2, 8, 16, 6, 3)
    tx, tw = od.tensor(x, device="opencl:0"), od.tensor(w, device="opencl:0")
    from opdispatch_opencl.errors import OpenCLOutOfMemoryError

    monkeypatch.setattr(dev, "max_alloc", 8 * 9 * 16 * 16 * 4 - 1)  # one image's columns do not fit in a buffer
    with pytest.raises(OpenCLOutOfMemoryError, match=r"^conv2d: the column matrix needs a buffer of .* allowed"):
        od.conv2d(tx, tw, padding=1)
    monkeypatch.setattr(dev, "max_alloc", 1 << 30)
    monkeypatch.setattr(dev, "global_mem", 64 << 10)  # the whole call does not fit in the device's memory
    with pytest.raises(OpenCLOutOfMemoryError, match=r"^conv2d_backward_weight: needs .* of device memory"):
        od.op_function("conv2d_backward_weight")(tx, od.tensor(dy, device="opencl:0"), weight_shape=w.shape,
                                                 **attrs)
