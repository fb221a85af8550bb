"""The backward ops (opdispatch.ops.grad): references against central finite differences of the forward
references, the tie rules of max pooling and max, and clear errors for invalid calls.

(The NumPy kernels are checked against these references on the conformance grid by
test_numpy_backend.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch.tensor import F as ga


class _References:
    """Op name -> its float64 reference function (``OPS[name].reference``)."""

    def __getattr__(self, name):
        return OPS[name].reference


ref = _References()
from opdispatch.ops import OPS
from opdispatch.schema import TensorMeta

F64 = np.dtype("float64")


def kernel_attrs(op: str, arrays, attrs: dict):
    """(output metas, kernel attributes) of op ``op`` on ``arrays`` with user ``attrs``."""
    schema = OPS[op]
    metas = [None if a is None else TensorMeta(np.shape(a), np.asarray(a).dtype) for a in arrays]
    return schema.infer(schema.name, metas, schema.normalize(attrs))


def fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of scalar ``f`` at ``x``."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f(x)
        flat[i] = old - h
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def assert_fd(analytic, numeric, scale=1.0):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale)


CONV_ATTRS = [
    ((2, 3, 7, 6), (4, 3, 3, 2), {}),
    ((1, 2, 7, 6), (3, 2, 3, 3), {"stride": 2, "padding": 1}),
    ((1, 2, 8, 8), (2, 2, 4, 4), {"padding": "SAME"}),                     # odd total: extra bottom/right
    ((1, 2, 9, 7), (2, 2, 3, 2), {"padding": "SAME", "stride": (2, 3)}),
    ((1, 2, 9, 8), (2, 2, 3, 3), {"padding": "SAME", "dilation": 2}),
    ((1, 2, 8, 9), (3, 2, 2, 3), {"padding": ((2, 0), (1, 3)), "stride": (3, 2), "dilation": (2, 1)}),
    ((2, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": (1, 0)}),
    ((1, 3, 6, 6), (3, 1, 3, 3), {"groups": 3, "padding": "SAME", "stride": 2}),   # depthwise
    ((1, 2, 7, 7), (2, 2, 2, 2), {"stride": 3, "padding": "VALID"}),               # rows never read
]


@pytest.mark.parametrize("xs, ws, attrs", CONV_ATTRS)
def test_conv2d_backward_references_match_finite_differences(xs, ws, attrs):
    rng = np.random.default_rng(len(str(attrs)))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    (out,), fwd = kernel_attrs("conv2d", (x, w, None), attrs)
    dy = rng.standard_normal(out.shape)

    (dx_meta,), kx = kernel_attrs("conv2d_backward_input", (dy, w), dict(attrs, input_shape=xs))
    (dw_meta,), kw = kernel_attrs("conv2d_backward_weight", (x, dy), dict(attrs, weight_shape=ws))
    assert kx["padding"] == kw["padding"] == fwd["padding"]
    assert (dx_meta.shape, dw_meta.shape) == (xs, ws)
    dx = ref.conv2d_backward_input(dy, w, **kx)
    dw = ref.conv2d_backward_weight(x, dy, **kw)

    assert_fd(dx, fd_grad(lambda v: np.sum(dy * ref.conv2d(v, w, **fwd)), x.copy()))
    assert_fd(dw, fd_grad(lambda v: np.sum(dy * ref.conv2d(x, v, **fwd)), w.copy()))


POOL_ATTRS = [
    ((2, 2, 7, 6), {"kernel_size": 2}),
    ((1, 2, 7, 6), {"kernel_size": 3, "stride": 1}),
    ((1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 1, 8, 7), {"kernel_size": 2, "padding": "SAME"}),
    ((1, 1, 9, 9), {"kernel_size": 3, "stride": 2, "padding": "SAME"}),
    ((1, 2, 7, 8), {"kernel_size": (3, 2), "stride": (2, 3), "padding": ((1, 0), (0, 1)), "ceil_mode": True}),
    ((1, 1, 5, 5), {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
]


@pytest.mark.parametrize("xs, attrs", POOL_ATTRS + [
    ((1, 2, 7, 6), {"kernel_size": 2, "dilation": 2}),
    ((1, 1, 8, 8), {"kernel_size": 3, "stride": 2, "dilation": (2, 1), "padding": 1, "ceil_mode": True}),
])
def test_max_pool2d_backward_matches_finite_differences(xs, attrs):
    rng = np.random.default_rng(len(str(attrs)))
    x = rng.permutation(np.prod(xs)).reshape(xs) * 0.1 + rng.uniform(0, 0.01, xs)  # distinct, gaps >> h
    (out,), fwd = kernel_attrs("max_pool2d", (x,), attrs)
    dy = rng.standard_normal(out.shape)
    _, k = kernel_attrs("max_pool2d_backward", (x, dy), attrs)
    dx = ref.max_pool2d_backward(x, dy, **k)
    assert_fd(dx, fd_grad(lambda v: np.sum(dy * ref.max_pool2d(v, **fwd)), x.copy()))


@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("xs, attrs", POOL_ATTRS)
def test_avg_pool2d_backward_matches_finite_differences(xs, attrs, cip):
    attrs = dict(attrs, count_include_pad=cip)
    rng = np.random.default_rng(len(str(attrs)))
    x = rng.standard_normal(xs)
    (out,), fwd = kernel_attrs("avg_pool2d", (x,), attrs)
    dy = rng.standard_normal(out.shape)
    (meta,), k = kernel_attrs("avg_pool2d_backward", (dy,), dict(attrs, input_shape=xs))
    assert meta.shape == xs
    dx = ref.avg_pool2d_backward(dy, **k)
    assert_fd(dx, fd_grad(lambda v: np.sum(dy * ref.avg_pool2d(v, **fwd)), x.copy()))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (2, 2, 3, 3)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_backward_matches_finite_differences(shape, training, affine):
    rng = np.random.default_rng(sum(shape) + 2 * training + affine)
    c = shape[1]
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    weight = rng.uniform(0.5, 2.0, c) if affine else None
    bias = rng.standard_normal(c)
    eps = 1e-3

    def loss(x_, w_, b_):
        y = ref.batch_norm(x_, rm, rv, w_, b_, training=training, momentum=0.1, eps=eps)
        return np.sum(dy * (y[0] if training else y))

    metas, k = kernel_attrs("batch_norm_backward", (x, dy, rm, rv, weight), {"training": training, "eps": eps})
    assert [m.shape for m in metas] == [shape, (c,), (c,)]
    dx, dweight, dbias = ref.batch_norm_backward(x, dy, rm, rv, weight, **k)
    w1 = np.ones(c) if weight is None else weight
    assert_fd(dx, fd_grad(lambda v: loss(v, w1, bias), x.copy()))
    assert_fd(dweight, fd_grad(lambda v: loss(x, v, bias), w1.copy()))
    assert_fd(dbias, fd_grad(lambda v: loss(x, w1, v), bias.copy()))


def test_relu_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.choice([-1, 1], (3, 5)) * rng.uniform(0.1, 2.0, (3, 5))
    dy = rng.standard_normal((3, 5))
    assert_fd(ref.relu_backward(dy, x), fd_grad(lambda v: np.sum(dy * ref.relu(v)), x.copy()))
    assert np.array_equal(ref.relu_backward(np.ones(3), np.array([0.0, -0.0, np.nan])), np.zeros(3))


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, True), (1, False), (-1, True), ((0, 2), False),
                                            ((2, 0, 1), True)])
def test_max_backward_matches_finite_differences(axis, keepdims):
    rng = np.random.default_rng(3)
    x = rng.permutation(24).reshape(2, 3, 4) * 0.1
    (out,), k = kernel_attrs("max", (x,), {"axis": axis, "keepdims": keepdims})
    dy = rng.standard_normal(out.shape)
    _, kb = kernel_attrs("max_backward", (x, dy), {"axis": axis, "keepdims": keepdims})
    assert_fd(ref.max_backward(x, dy, **kb), fd_grad(lambda v: np.sum(dy * ref.max(v, **k)), x.copy()))


def test_softmax_cross_entropy_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    logits, labels, dloss = rng.standard_normal((5, 4)), rng.integers(0, 4, 5), np.array(1.7)
    got = ref.softmax_cross_entropy_backward(logits, labels, dloss)
    assert_fd(got, fd_grad(lambda v: float(dloss * ref.softmax_cross_entropy(v, labels)), logits.copy()))


def test_broadcast_to_follows_numpy():
    x = np.arange(3.0).reshape(3, 1)
    for dtype in ("float32", "float64"):
        got = ga.broadcast_to(x.astype(dtype), shape=(2, 3, 4))
        assert got.shape == (2, 3, 4) and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got.numpy(), np.broadcast_to(x, (2, 3, 4)))
    assert ga.broadcast_to(np.float64(2.0), shape=()).shape == ()
    assert ga.broadcast_to(np.ones(1), shape=[0]).shape == (0,)


# ---------------------------------------------------------------------------------------------
# tie rules: reference and NumPy kernel
# ---------------------------------------------------------------------------------------------

def _both(op: str, *arrays, **attrs):
    """The reference's and the NumPy kernel's results (float64 and float32 kernels)."""
    _, k = kernel_attrs(op, arrays, attrs)
    out = [np.asarray(getattr(ref, op)(*arrays, **k))]
    for dtype in ("float64", "float32"):
        cast = [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in arrays]
        out.append(getattr(ga, op)(*cast, **attrs).numpy())
    return out


def test_max_pool2d_backward_credits_the_first_maximum_of_each_window():
    x = np.array([[[[1.0, 3.0, 3.0],
                    [3.0, 2.0, 3.0]]]])
    dy = np.array([[[[1.0, 10.0]]]])
    # window (0, 0) = [1 3; 3 2]: first 3 at (0, 1); window (0, 1) = [3 3; 2 3]: first 3 at (0, 1)
    want = np.array([[[[0.0, 11.0, 0.0], [0.0, 0.0, 0.0]]]])
    for got in _both("max_pool2d_backward", x, dy, kernel_size=2, stride=1):
        np.testing.assert_array_equal(got, want)


def test_max_pool2d_backward_constant_input_and_padding():
    x = np.full((1, 1, 3, 3), -2.0)  # below nothing but the -inf padding, which never gets gradient
    dy = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    want = np.zeros((1, 1, 3, 3))
    # kernel 3, padding 1, stride 1: the first real element of window (a, b) is (max(a-1, 0), max(b-1, 0))
    for a in range(3):
        for b in range(3):
            want[0, 0, max(a - 1, 0), max(b - 1, 0)] += dy[0, 0, a, b]
    for got in _both("max_pool2d_backward", x, dy, kernel_size=3, stride=1, padding=1):
        np.testing.assert_array_equal(got, want)
        assert got.sum() == dy.sum()


def test_max_pool2d_backward_window_of_only_padding_passes_nothing():
    # height 1, kernel 2 dilated by 2 with padding 1: the taps sit at rows -1 and 1, both padding
    x = np.array([[[[4.0, 1.0, 2.0]]]])
    attrs = {"kernel_size": (2, 1), "dilation": (2, 1), "padding": ((1, 1), (0, 0))}
    (out,), _ = kernel_attrs("max_pool2d", (x,), attrs)
    dy = np.ones(out.shape)
    for got in _both("max_pool2d_backward", x, dy, **attrs):
        np.testing.assert_array_equal(got, np.zeros_like(x))


def test_max_pool2d_backward_nan_takes_the_gradient():
    x = np.array([[[[1.0, np.nan], [5.0, np.nan]]]])
    for got in _both("max_pool2d_backward", x, np.array([[[[3.0]]]]), kernel_size=2):
        np.testing.assert_array_equal(got, [[[[0.0, 3.0], [0.0, 0.0]]]])


def test_max_backward_splits_among_ties():
    x = np.array([[1.0, 5.0, 5.0, 2.0], [7.0, 7.0, 7.0, 7.0]])
    for got in _both("max_backward", x, np.array([2.0, 8.0]), axis=1):
        np.testing.assert_allclose(got, [[0, 1, 1, 0], [2, 2, 2, 2]])
    for got in _both("max_backward", x, np.array([[8.0]]), axis=None, keepdims=True):
        np.testing.assert_allclose(got, [[0, 0, 0, 0], [2, 2, 2, 2]])
    for got in _both("max_backward", x, np.array([3.0, 4.0, 6.0, 1.0]), axis=0):
        np.testing.assert_allclose(got, [[0, 0, 0, 0], [3, 4, 6, 1]])
    for got in _both("max_backward", np.array(2.5), np.array(4.0)):
        np.testing.assert_allclose(got, 4.0)


def test_backward_ops_return_the_input_dtype_and_device():
    rng = np.random.default_rng(0)
    x = od.tensor(rng.standard_normal((1, 2, 5, 5)), dtype="float32")
    w = od.tensor(rng.standard_normal((2, 2, 3, 3)), dtype="float32")
    dy = od.conv2d(x, w, padding="SAME")
    for t in (ga.conv2d_backward_input(dy, w, input_shape=x.shape, padding="SAME"),
              ga.conv2d_backward_weight(x, dy, weight_shape=w.shape, padding="SAME"),
              ga.relu_backward(dy, dy), *ga.batch_norm_backward(x, x, np.zeros(2, np.float32),
                                                                np.ones(2, np.float32), training=True)):
        assert t.dtype == np.dtype("float32") and t.device == od.Device("numpy:0")


def test_op_function_finds_forward_and_backward_ops():
    assert od.op_function("conv2d") is od.conv2d
    assert od.op_function("max_backward") is ga.max_backward
    with pytest.raises(od.InvalidArgumentError, match="unknown op 'nope'"):
        od.op_function("nope")


# ---------------------------------------------------------------------------------------------
# invalid calls
# ---------------------------------------------------------------------------------------------

def _z(*shape, dtype="float64"):
    return np.zeros(shape, dtype=dtype)


X, W = _z(1, 2, 5, 5), _z(3, 2, 3, 3)   # conv2d(X, W) -> (1, 3, 3, 3)
DY = _z(1, 3, 3, 3)
BAD_CALLS = [
    # (function, args, kwargs, error class, argument named in the message)
    (ga.conv2d_backward_input, (_z(1, 3, 4, 3), W, (1, 2, 5, 5)), {}, od.ShapeError, "'dy'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 5)), {}, od.InvalidArgumentError, "'input_shape'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 0, 5)), {}, od.InvalidArgumentError, "'input_shape'"),
    (ga.conv2d_backward_input, (DY, W, (1, 4, 5, 5)), {}, od.ShapeError, "'w'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 5, 5)), {"groups": 2}, od.ShapeError, "'groups'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 5, 5)), {"padding": "full"}, od.InvalidArgumentError, "'padding'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 5, 5)), {"stride": 0}, od.InvalidArgumentError, "'stride'"),
    (ga.conv2d_backward_input, (DY, W, (1, 2, 2, 2)), {}, od.ShapeError, "'w'"),
    (ga.conv2d_backward_input, (DY, W.astype("float32"), (1, 2, 5, 5)), {}, od.DTypeError, "'w'"),
    (ga.conv2d_backward_weight, (X, DY, (3, 2, 3, 0)), {}, od.InvalidArgumentError, "'weight_shape'"),
    (ga.conv2d_backward_weight, (X, DY, (3, 2, 2, 2)), {}, od.ShapeError, "'dy'"),
    (ga.conv2d_backward_weight, (X, DY, (3, 1, 3, 3)), {}, od.ShapeError, "'weight_shape'"),
    (ga.conv2d_backward_weight, (_z(2, 5, 5), DY, (3, 2, 3, 3)), {}, od.ShapeError, "'x'"),
    (ga.max_pool2d_backward, (X, _z(1, 2, 3, 3), 2), {}, od.ShapeError, "'dy'"),
    (ga.max_pool2d_backward, (X, _z(1, 2, 2, 2), 7), {}, od.ShapeError, "'kernel_size'"),
    (ga.max_pool2d_backward, (X, _z(1, 2, 2, 2, dtype="float32"), 2), {}, od.DTypeError, "'dy'"),
    (ga.max_pool2d_backward, (X, _z(1, 2, 2, 2), 2), {"ceil_mode": 1}, od.InvalidArgumentError, "'ceil_mode'"),
    (ga.avg_pool2d_backward, (_z(1, 2, 2, 2), None, 2), {}, od.InvalidArgumentError, "'input_shape'"),
    (ga.avg_pool2d_backward, (_z(1, 2, 3, 2), (1, 2, 5, 5), 2), {}, od.ShapeError, "'dy'"),
    (ga.avg_pool2d_backward, (_z(1, 2, 2, 2), (1, 2, 5, 5), 2), {"padding": 2}, od.ShapeError, "'padding'"),
    (ga.batch_norm_backward, (X, _z(1, 2, 5, 4), _z(2), _z(2)), {}, od.ShapeError, "'dy'"),
    (ga.batch_norm_backward, (X, X, _z(2), _z(2), _z(3)), {}, od.ShapeError, "'weight'"),
    (ga.batch_norm_backward, (X, X, _z(2), _z(3)), {}, od.ShapeError, "'running_var'"),
    (ga.batch_norm_backward, (X, X, _z(2), _z(2)), {"eps": 0.0}, od.InvalidArgumentError, "'eps'"),
    (ga.batch_norm_backward, (_z(1, 2), _z(1, 2), _z(2), _z(2)), {"training": True}, od.ShapeError, "'x'"),
    (ga.batch_norm_backward, (_z(3), _z(3), _z(3), _z(3)), {}, od.ShapeError, "'x'"),
    (ga.relu_backward, (_z(2, 3), _z(3, 2)), {}, od.ShapeError, "'x'"),
    (ga.relu_backward, (_z(2), _z(2, dtype="int64")), {}, od.DTypeError, "'x'"),
    (ga.max_backward, (_z(2, 3), _z(3)), {"axis": 1}, od.ShapeError, "'dy'"),
    (ga.max_backward, (_z(2, 3), _z(2)), {"axis": 1, "keepdims": True}, od.ShapeError, "'dy'"),
    (ga.max_backward, (_z(2, 3), _z(2)), {"axis": 2}, od.InvalidArgumentError, "'axis'"),
    (ga.max_backward, (_z(2, 0), _z(2)), {"axis": 1}, od.ShapeError, "'x'"),
    (ga.softmax_cross_entropy_backward, (_z(3, 4), np.array([0, 4, 1]), np.float64(1.0)), {},
     od.InvalidArgumentError, "'labels'"),
    (ga.softmax_cross_entropy_backward, (_z(3, 4), np.array([0, 1, 1]), _z(1)), {}, od.ShapeError, "'dloss'"),
    (ga.softmax_cross_entropy_backward, (_z(3, 4), _z(3), np.float64(1.0)), {}, od.DTypeError, "'labels'"),
    (ga.softmax_cross_entropy_backward, (_z(3, 4), np.array([0, 1, 1]), np.float32(1.0)), {}, od.DTypeError,
     "'dloss'"),
    (ga.broadcast_to, (_z(2, 3), (3, 3)), {}, od.ShapeError, "'shape'"),
    (ga.broadcast_to, (_z(2, 3), (3,)), {}, od.ShapeError, "'shape'"),
    (ga.broadcast_to, (_z(2), (2, -1)), {}, od.InvalidArgumentError, "'shape'"),
    (ga.broadcast_to, (_z(2), "2"), {}, od.InvalidArgumentError, "'shape'"),
]


@pytest.mark.parametrize("fn, args, kwargs, cls, arg", BAD_CALLS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(BAD_CALLS)])
def test_invalid_calls_raise_clear_errors(fn, args, kwargs, cls, arg):
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith(fn.__name__ + ":"), msg
    assert arg in msg and "allowed" in msg, msg


def test_unknown_attribute_is_refused():
    schema = OPS["relu_backward"]
    with pytest.raises(od.InvalidArgumentError, match=r"^relu_backward: unknown attribute"):
        schema.normalize({"axis": 1})
