"""Empty batches (N = 0): conv2d (and conv2d_bias_relu, conv2d_backward_input / _weight), max and
average pooling (and their gradients), batch norm in inference (and its gradient op) and the
cross-entropy (and its gradient) accept a batch of 0 and return empty results of the right shapes,
as PyTorch does, on numpy:0, opencl:0 (where it exists) and the CuPy kernels run on NumPy
(``cupysim:0``), forward and under `GradientTape` (eager and through ``od.function``).

The mean cross-entropy of an empty batch is NaN (the mean of no terms, PyTorch's reduction='mean');
its gradient is an empty (0, C) array, so the parameters' gradients are zeros, not NaN. Every
other dimension stays >= 1, and batch norm in training still needs 2 values per channel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch_cupy.simulate import SimulatedPlugin

F32 = np.float32


def _available() -> list[str]:
    names = {str(d) for d in od.devices()}
    return ["numpy:0"] + (["opencl:0"] if "opencl:0" in names else [])


DEVICES = _available() + ["cupysim:0"]
if "opencl:0" not in DEVICES:  # said in the test ids: opencl:0 is checked where PoCL works
    DEVICES.append(pytest.param("opencl:0", marks=pytest.mark.skip(reason="no opencl:0 on this machine")))


@pytest.fixture(scope="module", autouse=True)
def cupysim():
    """The CuPy backend's kernels on NumPy arrays, registered as ``cupysim:0`` for this module."""
    from opdispatch import registry as registry_module

    status = od.register_plugin(SimulatedPlugin(), name="cupysim")
    assert status.status == "loaded", status
    yield
    registry_module.reload()


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(*shape: int) -> np.ndarray:
    return _rng(len(shape) + sum(shape)).standard_normal(shape).astype(F32)


def positive(*shape: int) -> np.ndarray:
    return _rng(7).uniform(0.1, 2.0, shape).astype(F32)


NO_LABELS = np.zeros(0, dtype=np.int64)

# (op, inputs, attributes): every affected op on an empty batch, over the paths kernels special-case
CALLS: list[tuple[str, tuple, dict]] = [
    ("conv2d", (normal(0, 3, 7, 6), normal(4, 3, 3, 2), normal(4)), {"padding": 1}),
    ("conv2d", (normal(0, 4, 6, 6), normal(4, 2, 3, 3), None), {"padding": "SAME", "groups": 2, "stride": 2}),
    ("conv2d", (normal(0, 5, 4, 4), normal(2, 5, 1, 1), None), {}),
    ("conv2d_bias_relu", (normal(0, 3, 7, 6), normal(4, 3, 3, 2), normal(4)), {"padding": 1}),
    ("conv2d_backward_input", (normal(0, 4, 7, 6), normal(4, 3, 3, 3)), {"padding": 1, "input_shape": (0, 3, 7, 6)}),
    ("conv2d_backward_input", (normal(0, 16, 6, 6), normal(16, 16, 3, 3)),
     {"padding": 1, "input_shape": (0, 16, 6, 6)}),
    ("conv2d_backward_input", (normal(0, 4, 3, 3), normal(4, 3, 3, 3)),
     {"padding": 1, "stride": 2, "input_shape": (0, 3, 6, 6)}),
    ("conv2d_backward_weight", (normal(0, 3, 7, 6), normal(0, 4, 7, 6)), {"padding": 1, "weight_shape": (4, 3, 3, 3)}),
    ("conv2d_backward_weight", (normal(0, 16, 6, 6), normal(0, 16, 6, 6)),
     {"padding": 1, "weight_shape": (16, 16, 3, 3)}),
    ("conv2d_backward_weight", (normal(0, 5, 4, 4), normal(0, 2, 4, 4)), {"weight_shape": (2, 5, 1, 1)}),
    ("max_pool2d", (normal(0, 3, 7, 6),), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool2d", (normal(0, 3, 8, 6),), {"kernel_size": 2}),
    ("max_pool2d", (normal(0, 2, 7, 7),), {"kernel_size": 2, "dilation": 2, "ceil_mode": True, "stride": 2}),
    ("avg_pool2d", (normal(0, 3, 7, 6),), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", (normal(0, 3, 7, 6),), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("max_pool2d_backward", (normal(0, 3, 7, 6), normal(0, 3, 4, 3)), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool2d_backward", (normal(0, 3, 8, 6), normal(0, 3, 4, 3)), {"kernel_size": 2}),
    ("avg_pool2d_backward", (normal(0, 3, 4, 3),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                    "input_shape": (0, 3, 7, 6)}),
    ("batch_norm", (normal(0, 3, 4, 5), normal(3), positive(3), positive(3), normal(3)), {}),
    ("batch_norm", (normal(0, 3), normal(3), positive(3), None, None), {}),
    ("batch_norm_backward", (normal(0, 3, 4, 5), normal(0, 3, 4, 5), normal(3), positive(3), positive(3)), {}),
    ("batch_norm_backward", (normal(0, 3), normal(0, 3), normal(3), positive(3), None), {}),
    ("softmax_cross_entropy", (normal(0, 5), NO_LABELS), {}),
    ("softmax_cross_entropy_backward", (normal(0, 5), NO_LABELS, np.asarray(1.5, F32)), {}),
]


def _ids(calls: list) -> list[str]:
    return [f"{op}-{i}" for i, (op, _, _) in enumerate(calls)]


def _expected(op: str, args: tuple, attrs: dict) -> tuple[list, list]:
    """The inferred output metas and the float64 reference outputs of a call."""
    schema = OPS[op]
    metas = [None if a is None else od.TensorMeta(a.shape, a.dtype) for a in args]
    outs, kattrs = schema.infer(op, metas, schema.normalize(attrs))
    ref = schema.reference(*args, **kattrs)
    return outs, list(ref) if isinstance(ref, tuple) else [ref]


def _outputs(result: Any) -> list:
    return list(result) if isinstance(result, tuple) else [result]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op, args, attrs", CALLS, ids=_ids(CALLS))
def test_forward_on_an_empty_batch(device, op, args, attrs):
    outs, refs = _expected(op, args, attrs)
    assert any(0 in m.shape for m in outs) or op.endswith("_weight") or op == "softmax_cross_entropy"
    tensors = [None if a is None else od.tensor(a, device=device) for a in args]
    got = _outputs(od.op_function(op)(*tensors, **attrs))
    assert len(got) == len(outs)
    for t, meta, ref in zip(got, outs, refs):
        assert t.device == od.Device(device)
        assert t.shape == meta.shape and t.dtype == np.float32
        host = t.numpy()
        assert host.shape == meta.shape
        np.testing.assert_allclose(host, ref, rtol=1e-5, atol=1e-6)  # NaN where the reference is NaN


def test_reference_semantics():
    """The contract itself: empty outputs, a zero weight gradient, zero batch-norm parameter gradients,
    a NaN mean loss and an empty loss gradient."""
    _, (dw,) = _expected(*CALLS[7])
    assert dw.shape == (4, 3, 3, 3) and not dw.any()
    _, (dx, dweight, dbias) = _expected(*CALLS[20])
    assert dx.shape == (0, 3, 4, 5) and dweight.shape == dbias.shape == (3,) and not dweight.any() and not dbias.any()
    _, (loss,) = _expected(*CALLS[22])
    assert loss.shape == () and math.isnan(float(loss))
    _, (dlogits,) = _expected(*CALLS[23])
    assert dlogits.shape == (0, 5)
    assert "NaN" in OPS["softmax_cross_entropy"].doc and "(0, C)" in OPS["softmax_cross_entropy"].doc


# -- gradients ----------------------------------------------------------------------------------

def _params(seed: int = 1) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {"w": rng.standard_normal((4, 3, 3, 3)).astype(F32), "b": rng.standard_normal(4).astype(F32),
            "rm": rng.standard_normal(4).astype(F32), "rv": rng.uniform(0.5, 2.0, 4).astype(F32),
            "gamma": rng.uniform(0.5, 2.0, 4).astype(F32), "beta": rng.standard_normal(4).astype(F32),
            "w2": rng.standard_normal((4, 4, 3, 3)).astype(F32), "wd": rng.standard_normal((4 * 3 * 3, 5)).astype(F32)}


def _model(x, labels, p):
    """conv (+ bias, relu: fused in graphs) -> max pool -> batch norm (inference) -> conv -> avg pool ->
    dense -> cross-entropy: every affected op and its gradient."""
    h = od.relu(od.conv2d(x, p["w"], p["b"], padding=1))                  # (N, 4, 8, 8)
    h = od.max_pool2d(h, 2)                                               # (N, 4, 4, 4)
    h = od.batch_norm(h, p["rm"], p["rv"], p["gamma"], p["beta"])
    h = od.conv2d(h, p["w2"], padding="SAME")
    h = od.avg_pool2d(h, 2, stride=2, padding=1, count_include_pad=False)  # (N, 4, 3, 3)
    return od.softmax_cross_entropy(od.matmul(od.flatten(h), p["wd"]), labels)


NAMES = ("w", "b", "rm", "rv", "gamma", "beta", "w2", "wd")


def _gradients(device: str, n: int, graph: bool) -> tuple[Any, dict, Any]:
    rng = _rng(n + 11)
    x = od.tensor(rng.standard_normal((n, 3, 8, 8)).astype(F32), device=device)
    labels = od.tensor(rng.integers(0, 5, n), device=device)
    params = {k: od.tensor(v, device=device) for k, v in _params().items()}

    def step(x, labels, params):
        with od.GradientTape() as tape:
            tape.watch([x] + [params[k] for k in NAMES])
            loss = _model(x, labels, params)
        grads = tape.gradient(loss, [x] + [params[k] for k in NAMES])
        return loss, grads[0], dict(zip(NAMES, grads[1:]))

    run = od.function(step) if graph else step
    return run(x, labels, params)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("device", DEVICES)
def test_gradients_of_an_empty_batch(device, graph):
    loss, dx, grads = _gradients(device, 0, graph)
    assert loss.shape == () and math.isnan(float(loss.numpy()))
    assert dx.shape == (0, 3, 8, 8) and dx.device == od.Device(device)
    for name, value in _params().items():
        g = grads[name]
        assert g.shape == value.shape and g.dtype == np.float32 and g.device == od.Device(device), name
        assert not np.asarray(g.numpy()).any(), f"d loss / d {name} of an empty batch is not zero"


@pytest.mark.parametrize("device", DEVICES)
def test_a_non_empty_batch_after_an_empty_one(device):
    """The empty call leaves nothing behind (scratch buffers, cached kernels): the next batch is right."""
    _gradients(device, 0, False)
    loss, dx, grads = _gradients(device, 3, False)
    ref_loss, ref_dx, ref_grads = _gradients("numpy:0", 3, False)
    np.testing.assert_allclose(loss.numpy(), ref_loss.numpy(), rtol=1e-4)
    np.testing.assert_allclose(dx.numpy(), ref_dx.numpy(), rtol=1e-3, atol=1e-5)
    for name in NAMES:
        np.testing.assert_allclose(grads[name].numpy(), ref_grads[name].numpy(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_conv_gradients_of_an_empty_batch(device):
    """conv2d's gradients of an empty batch: dx empty of x's shape, dw and db zeros of theirs."""
    x = od.tensor(normal(0, 4, 6, 5), device=device)
    w = od.tensor(normal(6, 2, 3, 2), device=device)
    b = od.tensor(normal(6), device=device)
    for op in (od.conv2d, od.op_function("conv2d_bias_relu")):
        with od.GradientTape() as tape:
            tape.watch([x, w, b])
            y = op(x, w, b, stride=(2, 1), padding="SAME", groups=2)
        assert y.shape == (0, 6, 3, 5)
        dx, dw, db = tape.gradient(y, [x, w, b], output_gradients=od.tensor(np.zeros(y.shape, F32), device=device))
        assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
        assert not dw.numpy().any() and not db.numpy().any()


# -- what stays an error ----------------------------------------------------------------------------

@pytest.mark.parametrize("op, args, attrs", [
    ("conv2d", (normal(2, 0, 5, 5), normal(4, 0, 3, 3)), {}),
    ("conv2d", (normal(2, 3, 0, 5), normal(4, 3, 1, 1)), {}),
    ("conv2d", (normal(0, 3, 5, 5), normal(0, 3, 3, 3)), {}),
    ("conv2d_backward_input", (normal(0, 4, 3, 3), normal(4, 3, 3, 3)), {"input_shape": (0, 0, 5, 5)}),
    ("conv2d_backward_weight", (normal(0, 3, 5, 5), normal(0, 4, 3, 3)), {"weight_shape": (0, 3, 3, 3)}),
    ("max_pool2d", (normal(0, 3, 5, 0),), {"kernel_size": 1}),
    ("avg_pool2d_backward", (normal(0, 3, 2, 2),), {"kernel_size": 2, "input_shape": (0, 3, 0, 4)}),
    ("batch_norm", (normal(0, 3, 2, 2), normal(3), positive(3)), {"training": True}),
    ("batch_norm", (normal(0, 3), normal(3), positive(3)), {"training": True}),
    ("batch_norm", (normal(2, 0, 2), normal(0), positive(0)), {}),
    ("batch_norm_backward", (normal(0, 3, 2), normal(0, 3, 2), normal(3), positive(3)), {"training": True}),
    ("softmax_cross_entropy", (normal(0, 0), NO_LABELS), {}),
], ids=lambda v: v if isinstance(v, str) else None)
def test_only_the_batch_may_be_empty(op, args, attrs):
    with pytest.raises(od.InvalidArgumentError) as info:
        od.op_function(op)(*args, **attrs)
    assert str(info.value).startswith(f"{op}:") and "allowed" in str(info.value)
