"""The NumPy backend matches the float64 reference on the whole conformance grid, float32 and float64."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od
from opdispatch_conformance.cases import grid_cases
from opdispatch_conformance.runner import as_args
from opdispatch_conformance.tolerance import compare, derive
from opdispatch import op_function
from opdispatch.ops import OPS
from opdispatch.schema import TensorMeta

CASES = grid_cases()


def test_the_device_records_numpy_and_the_blas_it_links():
    facts = od.device_info("numpy:0").driver
    assert facts["numpy"] == np.__version__
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    assert facts["blas"] == f"{blas['name']} {blas['version']}"
    if importlib.util.find_spec("threadpoolctl") is None:
        assert facts["blas at run time"] == "unknown (pip install threadpoolctl to record it)"
        return
    # the BLAS as loaded, with its thread count (matmul's rounding follows it): one thread here
    code = "import opdispatch as od; print(od.device_info('numpy:0').driver['blas at run time'])"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(", 1 thread)") and blas["version"] in out.stdout


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_numpy_kernel_matches_reference(case, dtype):
    schema = OPS[case.op]
    arrays = case.make_inputs(dtype)
    fn = op_function(case.op)
    result = fn(*as_args(schema, arrays), **case.attrs)
    results = result if isinstance(result, tuple) else (result,)
    metas = [None if a is None else TensorMeta(a.shape, a.dtype) for a in arrays]
    outs, kattrs = schema.infer(schema.name, metas, schema.normalize(case.attrs))
    ref = schema.reference(*arrays, **kattrs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    tol = derive(schema, metas, kattrs, dtype, [np.asarray(r) for r in refs])
    assert len(results) == len(refs) == len(outs)
    for got, want, meta in zip(results, refs, outs):
        host = got.numpy()
        assert got.device == od.Device("numpy:0")
        assert host.shape == got.shape == meta.shape == np.shape(want)
        assert host.dtype == got.dtype == meta.dtype  # the case dtype for float ops; cast: its attribute
        cmp = compare(host, want, tol)
        assert cmp.ok, f"{case.name} {dtype}: {cmp.problem}; {tol.describe()}"


@pytest.mark.parametrize("pad", [0, 1])
def test_conv_results_never_alias_the_reused_scratch_buffers(pad):
    from opdispatch_numpy.conv import conv2d
    from opdispatch_numpy.conv import conv2d_backward_input, conv2d_backward_weight

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    kw = dict(stride=(1, 1), padding=((pad, pad), (pad, pad)), dilation=(1, 1), groups=1)
    y1 = conv2d(x, w, **kw)
    dx1 = conv2d_backward_input(y1, w, input_shape=x.shape, **kw)
    dw1 = conv2d_backward_weight(x, y1, weight_shape=w.shape, **kw)
    saved = [a.copy() for a in (y1, dx1, dw1)]
    y2 = conv2d(2 * x, w, **kw)  # the same scratch buffers, other values
    conv2d_backward_input(y2, w, input_shape=x.shape, **kw)
    conv2d_backward_weight(2 * x, y2, weight_shape=w.shape, **kw)
    for before, after in zip(saved, (y1, dx1, dw1)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("w_shape, padding, dilation, groups", [
    ((6, 8, 3, 3), ((1, 1), (1, 1)), (1, 1), 1),
    ((6, 8, 3, 2), ((0, 2), (1, 0)), (1, 1), 1),         # asymmetric padding
    ((6, 8, 3, 3), ((2, 2), (2, 2)), (2, 2), 1),         # dilated
    ((6, 8, 3, 3), ((1, 0), (1, 1)), (1, 1), 2),         # grouped: 16 input channels
    ((6, 8, 2, 2), ((3, 3), (0, 0)), (1, 1), 1),         # padding wider than the kernel: the scatter path
])
def test_stride_one_input_gradient_as_a_forward_conv_matches_the_reference(w_shape, padding, dilation, groups):
    reference = OPS["conv2d_backward_input"].reference
    from opdispatch_numpy.conv import conv2d_backward_input

    rng = np.random.default_rng(1)
    x_shape = (2, w_shape[1] * groups, 7, 6)
    w = rng.standard_normal(w_shape)
    kw = dict(stride=(1, 1), padding=padding, dilation=dilation, groups=groups)
    oh = x_shape[2] + sum(padding[0]) - dilation[0] * (w_shape[2] - 1)
    ow = x_shape[3] + sum(padding[1]) - dilation[1] * (w_shape[3] - 1)
    dy = rng.standard_normal((2, w_shape[0], oh, ow))
    np.testing.assert_allclose(conv2d_backward_input(dy, w, input_shape=x_shape, **kw),
                               reference(dy, w, input_shape=x_shape, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("w_shape, stride, padding, dilation, groups", [
    ((6, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((6, 8, 3, 2), (2, 1), ((0, 2), (1, 0)), (1, 1), 1),
    ((6, 8, 3, 3), (1, 2), ((2, 2), (2, 2)), (2, 2), 1),
    ((6, 8, 3, 3), (1, 1), ((1, 0), (1, 1)), (1, 1), 2),
])
def test_batch_folded_weight_gradient_matches_the_reference(w_shape, stride, padding, dilation, groups):
    reference = OPS["conv2d_backward_weight"].reference
    from opdispatch.shapes import output_hw
    from opdispatch_numpy.conv import conv2d_backward_weight

    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, w_shape[1] * groups, 7, 6))
    oh, ow = output_hw(x.shape[2:], w_shape[2:], stride, padding, dilation)
    dy = rng.standard_normal((3, w_shape[0], oh, ow))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(conv2d_backward_weight(x, dy, weight_shape=w_shape, **kw),
                               reference(x, dy, weight_shape=w_shape, **kw), rtol=1e-12, atol=1e-12)


def test_masked_gradients_keep_non_finite_values_out_of_masked_positions():
    from opdispatch_numpy.elementwise import relu_backward

    x = np.array([1.0, -1.0, 0.0, 2.0, -3.0], np.float32)
    dy = np.array([np.inf, np.nan, np.inf, -np.inf, 5.0], np.float32)
    np.testing.assert_array_equal(relu_backward(dy, x), [np.inf, 0.0, 0.0, -np.inf, 0.0])
    np.testing.assert_array_equal(relu_backward(np.ones(5, np.float32), x), [1, 0, 0, 1, 0])


def test_conv_kernels_agree_with_the_reference_when_the_batch_is_split_into_chunks(monkeypatch):
    import opdispatch_numpy.scratch as scratch
    from opdispatch_conformance.runner import FAILED
    from opdispatch_conformance.suite import collect_cases, run_device

    monkeypatch.setattr(scratch, "CHUNK_BYTES", 1)  # one sample per chunk: every chunk boundary is exercised
    ops = ["conv2d", "conv2d_bias_relu", "conv2d_backward_input", "conv2d_backward_weight"]
    run = run_device(od.Device("numpy:0"), collect_cases(ops, random_per_op=10, onnx=False), out=None)
    assert {r.op for r in run["results"]} >= set(ops)
    assert [r.case for r in run["results"] if r.status == FAILED] == []


def test_the_conformance_suite_passes_on_numpy_0():
    """The whole suite (grid, seeded random and ONNX-derived cases; forward and gradients) on this
    backend's own device."""
    from opdispatch_conformance import report
    from opdispatch_conformance.runner import FAILED
    from opdispatch_conformance.suite import collect_cases, run_device

    run = run_device(od.Device("numpy:0"), collect_cases(random_per_op=10), out=None)
    failed = [r for r in run["results"] if r.status == FAILED]
    assert not failed, report.failures_text(failed)
    assert {r.op for r in run["results"]} == set(OPS) | {op + ".grad" for op, s in OPS.items() if s.vjp is not None}
    # silu has no kernel, by design; an unpinned row may run an installed provider's kernel (oneDNN's
    # conv_transpose2d, which numpy:0 otherwise decomposes), never another backend's
    providers = {r.provider for r in run["results"] if r.pinned in ("", "numpy")}
    assert {"numpy", "decomposed"} <= providers <= {"numpy", "decomposed"} | set(od.providers())
