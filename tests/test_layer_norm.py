"""od.layer_norm (PyTorch semantics: over the trailing len(normalized_shape) axes, biased variance) and its
backward op, against formulas written here independently of opdispatch.reference: one row at a time with
np.var, on numpy:0 and opencl:0 (where PoCL works), eagerly, under od.function and under GradientTape
(checked against central finite differences)."""

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


def layer_norm_formula(x, shape, weight=None, bias=None, eps=1e-5):
    """Row by row: every index of the leading axes normalises the block x[index] of shape ``shape``."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:x.ndim - len(shape)]
    y = np.empty_like(x)
    for index in np.ndindex(*lead):
        block = x[index]
        y[index] = (block - block.mean()) / np.sqrt(np.var(block) + eps)
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y


CALLS = [((2, 3, 4, 5), (4, 5)), ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (2, 3, 4, 5)), ((6, 70), (70,)),
         ((3, 1), (1,)), ((4, 300), (300,))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("xshape,shape", CALLS)
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_matches_the_row_formula(device, xshape, shape, affine):
    rng = np.random.default_rng(len(xshape) + len(shape))
    x = rng.standard_normal(xshape) * 3 + 1
    w = rng.uniform(0.5, 2.0, shape) if affine else None
    b = rng.standard_normal(shape) if affine else None
    want = layer_norm_formula(x, shape, w, b)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        args = [None if a is None else od.tensor(a.astype(dtype), device=device) for a in (x, w, b)]
        y = od.layer_norm(args[0], shape, args[1], args[2])
        assert y.dtype == dtype and y.shape == xshape and y.device == od.Device(device)
        np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)


def test_normalized_shape_forms_and_eps():
    x = np.random.default_rng(1).standard_normal((3, 8))
    want = layer_norm_formula(x, (8,), eps=0.25)
    for form in (8, (8,), [8], np.int64(8)):
        np.testing.assert_allclose(od.layer_norm(x, form, eps=0.25).numpy(), want, rtol=1e-12)


def test_a_constant_row_normalises_to_zero_and_keeps_the_bias():
    x = np.full((2, 4), 7.0)
    b = np.arange(4.0)
    np.testing.assert_array_equal(od.layer_norm(x, 4, None, b).numpy(), np.broadcast_to(b, (2, 4)))


@pytest.mark.parametrize("xshape,shape,message", [
    ((2, 3, 4), (3,), r"\(3,\).*trailing dimensions of x \(2, 3, 4\)"),
    ((2, 3, 4), (2, 3, 4, 1), r"\(2, 3, 4, 1\)"),
    ((4,), (5,), r"\(5,\).*x \(4,\)"),
])
def test_a_normalized_shape_that_is_not_the_trailing_dims_is_a_shape_error(xshape, shape, message):
    with pytest.raises(od.ShapeError, match=r"layer_norm: argument 'normalized_shape' got " + message):
        od.layer_norm(np.zeros(xshape, np.float32), shape)


def test_weight_and_bias_of_another_shape_are_shape_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(od.ShapeError, match=r"layer_norm: argument 'weight' got shape \(4,\); allowed: \(3, 4\)"):
        od.layer_norm(x, (3, 4), np.ones(4, np.float32))
    with pytest.raises(od.ShapeError, match=r"argument 'bias' got shape \(4, 3\); allowed: \(3, 4\)"):
        od.layer_norm(x, (3, 4), None, np.ones((4, 3), np.float32))
    with pytest.raises(od.DTypeError):
        od.layer_norm(x, (3, 4), np.ones((3, 4), np.float64))


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), "1e-5"])
def test_eps_must_be_positive(eps):
    with pytest.raises(od.InvalidArgumentError, match=r"layer_norm: argument 'eps'.*> 0"):
        od.layer_norm(np.zeros((2, 3), np.float32), 3, eps=eps)


@pytest.mark.parametrize("shape", [(), [], (0,), (3, -1), 2.0, None, True])
def test_bad_normalized_shapes_are_invalid_arguments(shape):
    with pytest.raises(od.InvalidArgumentError, match=r"layer_norm: argument 'normalized_shape'"):
        od.layer_norm(np.zeros((2, 3), np.float32), shape)


def test_op_function_is_the_generic_form_and_od_layer_norm_the_pytorch_one():
    x, w = np.random.default_rng(2).standard_normal((2, 5)), np.linspace(0.5, 1.5, 5)
    generic = od.op_function("layer_norm")(x, w, None, normalized_shape=5)
    np.testing.assert_allclose(generic.numpy(), od.layer_norm(x, 5, w).numpy(), rtol=0)
    np.testing.assert_allclose(generic.numpy(), layer_norm_formula(x, (5,), w), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_graph_mode_gives_the_eager_results(device):
    rng = np.random.default_rng(3)
    x = od.tensor(rng.standard_normal((4, 3, 6)).astype(np.float32), device=device)
    w = od.tensor(rng.uniform(0.5, 2, (3, 6)).astype(np.float32), device=device)
    b = od.tensor(rng.standard_normal((3, 6)).astype(np.float32), device=device)
    f = od.function(lambda x, w, b: od.relu(od.layer_norm(x, (3, 6), w, b, eps=1e-3)))
    np.testing.assert_allclose(f(x, w, b).numpy(), od.relu(od.layer_norm(x, (3, 6), w, b, eps=1e-3)).numpy(),
                               rtol=1e-6, atol=1e-6)


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
@pytest.mark.parametrize("affine", [False, True])
def test_gradient_tape_matches_finite_differences_of_the_formula(device, graph, affine):
    rng = np.random.default_rng(4 + affine)
    shape = (3, 4)
    x = rng.standard_normal((2,) + shape)
    w, b = rng.uniform(0.5, 2.0, shape), rng.standard_normal(shape)
    dy = rng.standard_normal(x.shape)

    def grads(xt, wt, bt, dyt):
        with od.GradientTape() as tape:
            tape.watch([xt, wt, bt] if affine else [xt])
            loss = od.sum(od.layer_norm(xt, shape, wt if affine else None, bt if affine else None, eps=1e-3) * dyt)
        return tuple(tape.gradient(loss, [xt, wt, bt] if affine else [xt]))

    run = od.function(grads) if graph else grads
    got = run(*[od.tensor(a, device=device) for a in (x, w, b, dy)])

    def loss():
        return float(np.sum(layer_norm_formula(x, shape, w if affine else None, b if affine else None, 1e-3) * dy))

    for g, a in zip(got, (x, w, b)):
        np.testing.assert_allclose(g.numpy(), _fd(loss, a), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_weight", [False, True])
def test_layer_norm_backward_matches_finite_differences(device, with_weight):
    rng = np.random.default_rng(5)
    shape = (5,)
    x, dy = rng.standard_normal((3, 2, 5)), rng.standard_normal((3, 2, 5))
    w = rng.uniform(0.5, 2.0, shape) if with_weight else None
    b = np.zeros(shape)
    ones = np.ones(shape)
    dx, dw, db = od.op_function("layer_norm_backward")(
        *[None if a is None else od.tensor(a, device=device) for a in (x, dy, w)], normalized_shape=shape, eps=1e-5)
    assert dx.shape == x.shape and dw.shape == shape and db.shape == shape
    wv = ones if w is None else w

    def loss():
        return float(np.sum(layer_norm_formula(x, shape, wv, b) * dy))

    np.testing.assert_allclose(dx.numpy(), _fd(loss, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw.numpy(), _fd(loss, wv), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db.numpy(), _fd(loss, b), rtol=1e-5, atol=1e-7)


def test_the_gradient_rule_calls_layer_norm_backward():
    x = od.tensor(np.random.default_rng(6).standard_normal((2, 4)))
    seen = []

    class Log:
        def record(self, schema, inputs, attrs, outputs):
            seen.append(schema.name)

    from opdispatch import recording

    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(od.layer_norm(x, 4))
    token = recording.push(Log())
    try:
        tape.gradient(y, x)
    finally:
        recording.pop(token)
    assert "layer_norm_backward" in seen
    assert OPS["layer_norm_backward"].no_vjp and OPS["layer_norm"].vjp is not None


def test_an_empty_batch_gives_an_empty_result_and_zero_parameter_gradients():
    x = od.tensor(np.zeros((0, 3), np.float32))
    w = od.tensor(np.ones(3, np.float32))
    b = od.tensor(np.zeros(3, np.float32))
    with od.GradientTape() as tape:
        tape.watch([w, b])
        loss = od.sum(od.layer_norm(x, 3, w, b))
    dw, db = tape.gradient(loss, [w, b])
    np.testing.assert_array_equal(dw.numpy(), np.zeros(3))
    np.testing.assert_array_equal(db.numpy(), np.zeros(3))
