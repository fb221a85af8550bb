"""od.local_response_norm: PyTorch's formula across channels, against formulas written here independently
of opdispatch.reference (a zero-padded sliding window over the channel axis, and ONNX LRN's rule), on
numpy:0 and opencl:0 (where PoCL works), eagerly, under od.function and under GradientTape (checked
against central finite differences).

The window: PyTorch pads size // 2 channels before c and (size - 1) // 2 after; ONNX LRN sums
max(0, c - floor((size - 1) / 2)) <= i <= min(C - 1, c + ceil((size - 1) / 2)). For odd sizes both are
(size - 1) / 2 on each side; for even sizes they are mirror images (PyTorch one more channel before,
ONNX one more after). od implements PyTorch's; ONNX's is od's on the channels reversed.
"""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS


def _devices() -> list:
    names = {str(d) for d in od.devices()}
    if "opencl:0" in names:
        return ["numpy:0", "opencl:0"]
    return ["numpy:0", pytest.param("opencl:0", marks=pytest.mark.skip(reason="no opencl:0 on this machine"))]


DEVICES = _devices()


def torch_formula(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """PyTorch's F.local_response_norm: x^2 zero-padded by (size // 2, (size - 1) // 2) on the channel
    axis, averaged over windows of ``size`` channels, then x / (k + alpha * avg) ** beta."""
    x = np.asarray(x, dtype=np.float64)
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    sq = np.pad(x * x, pad)
    windows = np.lib.stride_tricks.sliding_window_view(sq, size, axis=1)  # (N, C, ..., size)
    avg = windows.sum(axis=-1) / size
    return x / (k + alpha * avg) ** beta


def onnx_formula(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """ONNX LRN (opset 13), written from its definition."""
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    square_sum = np.zeros_like(x)
    for ch in range(c):
        lo = max(0, ch - int(np.floor((size - 1) / 2)))
        hi = min(c - 1, ch + int(np.ceil((size - 1) / 2)))
        square_sum[:, ch] = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
    return x / (bias + alpha / size * square_sum) ** beta


SHAPES = [(2, 5, 3, 4), (1, 1, 2, 2), (2, 7, 6), (1, 3, 2, 2, 2), (1, 40, 3, 3)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_local_response_norm_matches_pytorchs_formula(device, shape, size):
    rng = np.random.default_rng(size + len(shape))
    x = rng.standard_normal(shape) * 2
    for attrs in ({}, {"alpha": 0.5, "beta": 0.75, "k": 2.0}, {"alpha": 2.0, "beta": 1.5, "k": 0.5}):
        want = torch_formula(x, size, **attrs)
        for dtype, tol in ((np.float64, 1e-13), (np.float32, 5e-6)):
            y = od.local_response_norm(od.tensor(x.astype(dtype), device=device), size, **attrs)
            assert y.dtype == dtype and y.shape == shape and y.device == od.Device(device)
            np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_odd_sizes_are_onnx_lrn_too(size):
    x = np.random.default_rng(size).standard_normal((2, 6, 3, 3))
    np.testing.assert_allclose(od.local_response_norm(x, size, alpha=0.3, beta=0.6, k=1.5).numpy(),
                               onnx_formula(x, size, 0.3, 0.6, 1.5), rtol=1e-13)


@pytest.mark.parametrize("size", [2, 4, 6])
def test_even_sizes_are_onnx_lrn_mirrored(size):
    x = np.random.default_rng(size).standard_normal((2, 6, 3, 3))
    got = od.local_response_norm(x, size, alpha=0.3, beta=0.6, k=1.5).numpy()
    onnx = onnx_formula(x, size, 0.3, 0.6, 1.5)
    assert not np.allclose(got, onnx)  # the windows differ for even sizes
    mirrored = od.local_response_norm(np.ascontiguousarray(x[:, ::-1]), size, alpha=0.3, beta=0.6, k=1.5).numpy()
    np.testing.assert_allclose(mirrored[:, ::-1], onnx, rtol=1e-13)


def test_defaults_are_pytorchs():
    x = np.random.default_rng(0).standard_normal((1, 4, 2, 2)) * 30
    np.testing.assert_allclose(od.local_response_norm(x, 3).numpy(), torch_formula(x, 3, 1e-4, 0.75, 1.0),
                               rtol=1e-13)


def test_zeros_with_k_zero_are_nan_as_zero_over_zero():
    x = np.zeros((1, 3, 1, 1))
    x[0, 0] = 1.0
    y = od.local_response_norm(x, 1, k=0.0, alpha=1.0).numpy()
    assert y[0, 0, 0, 0] == pytest.approx(1.0) and np.isnan(y[0, 1:]).all()


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_x_needs_a_channel_axis_and_one_more(shape):
    with pytest.raises(od.ShapeError, match=r"local_response_norm: argument 'x' got shape .*allowed: rank >= 3"):
        od.local_response_norm(np.zeros(shape, np.float32), 3)


@pytest.mark.parametrize("size", [0, -1, 2.5, None, True])
def test_size_must_be_a_positive_int(size):
    with pytest.raises(od.InvalidArgumentError, match=r"local_response_norm: argument 'size'.*an int >= 1"):
        od.local_response_norm(np.zeros((1, 3, 2, 2), np.float32), size)


def test_empty_channels_are_a_shape_error_and_an_empty_batch_is_empty():
    with pytest.raises(od.ShapeError, match="local_response_norm: argument 'x'"):
        od.local_response_norm(np.zeros((1, 0, 2, 2), np.float32), 3)
    assert od.local_response_norm(np.zeros((0, 3, 2, 2), np.float32), 3).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("device", DEVICES)
def test_graph_mode_gives_the_eager_results(device):
    x = od.tensor(np.random.default_rng(1).standard_normal((2, 6, 4, 4)).astype(np.float32), device=device)
    f = od.function(lambda x: od.local_response_norm(od.relu(x), 5, alpha=0.1, beta=0.75, k=2.0))
    np.testing.assert_allclose(f(x).numpy(), od.local_response_norm(od.relu(x), 5, alpha=0.1, beta=0.75, k=2.0).numpy(),
                               rtol=1e-6, atol=1e-7)


def _fd(loss, a, h=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(*a.shape):
        old = a[i]
        a[i] = old + h
        up = loss()
        a[i] = old - h
        down = loss()
        a[i] = old
        g[i] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("size", [2, 3, 4])
def test_gradient_tape_matches_finite_differences_of_the_formula(device, graph, size):
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, 5, 2, 3))
    dy = rng.standard_normal(x.shape)
    attrs = {"alpha": 0.7, "beta": 0.75, "k": 1.5}

    def grad(xt, dyt):
        with od.GradientTape() as tape:
            tape.watch(xt)
            loss = od.sum(od.local_response_norm(xt, size, **attrs) * dyt)
        return tape.gradient(loss, xt)

    run = od.function(grad) if graph else grad
    got = run(od.tensor(x, device=device), od.tensor(dy, device=device))
    want = _fd(lambda: float(np.sum(torch_formula(x, size, **attrs) * dy)), x)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-8)


def test_the_gradient_rule_matches_finite_differences_on_the_reference_device():
    """The schema's vjp (used wherever local_response_norm runs as a kernel, e.g. the reference:0 oracle)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 6, 2, 2))
    dy = rng.standard_normal(x.shape)
    ref = od.Device("reference:0")
    xt = od.tensor(x, device=ref)
    with od.GradientTape() as tape:
        tape.watch(xt)
        loss = od.sum(od.op_function("local_response_norm")(xt, size=4, alpha=1.0, beta=0.5, k=1.0)
                      * od.tensor(dy, device=ref))
    got = tape.gradient(loss, xt).numpy()
    want = _fd(lambda: float(np.sum(torch_formula(x, 4, 1.0, 0.5, 1.0) * dy)), x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    assert OPS["local_response_norm"].vjp is not None and OPS["local_response_norm"].decomposition is not None
