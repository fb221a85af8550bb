"""Tensors that act like NumPy arrays (issue 14, parts 2 and 3): comparisons, ``**``, ``abs``, scalar
conversions, hashing, the NumPy-like methods, ``__array_ufunc__`` / ``__array_function__``, DLPack,
pickle and deepcopy, on numpy:0 and opencl:0, eager and under ``od.function``; gradients of astype,
``**`` and abs against finite differences."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import opdispatch as od
from device_params import DEVICES as DEVICE_PARAMS

DEVICES = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]
MODES = ("eager", "graph")
RNG = np.random.default_rng(14)
A = RNG.standard_normal((3, 4)).astype(np.float32)
B = RNG.standard_normal((3, 4)).astype(np.float32)
B[0, 0] = A[0, 0]  # one tie


@pytest.fixture(params=DEVICE_PARAMS)  # numpy:0 and opencl:0, skipped with the reason where absent
def dev(request):
    return request.param


def _run(mode, fn, *args):
    """fn(*args) eagerly or as an od.function (tensors in, the result read back as NumPy)."""
    f = od.function(fn) if mode == "graph" else fn
    out = f(*args)
    return tuple(np.asarray(o.numpy()) for o in out) if isinstance(out, tuple) else np.asarray(out.numpy())


# -- comparisons, **, abs --------------------------------------------------------------------------------

COMPARISONS = [("==", lambda a, b: a == b), ("!=", lambda a, b: a != b), ("<", lambda a, b: a < b),
               ("<=", lambda a, b: a <= b), (">", lambda a, b: a > b), (">=", lambda a, b: a >= b)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,op", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_are_elementwise_bool_tensors(dev, mode, name, op):
    a, b = od.tensor(A, device=dev), od.tensor(B, device=dev)
    for got, want in [(_run(mode, op, a, b), op(A, B)),
                      (_run(mode, lambda x: op(x, 0.5), a), op(A, np.float32(0.5))),
                      (_run(mode, lambda x: op(0.5, x), a), op(np.float32(0.5), A)),  # reflected
                      (_run(mode, lambda x: op(x, B[1]), a), op(A, B[1]))]:  # an array, broadcast
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)


def test_comparison_results_live_on_the_device_and_ndarray_on_the_left_gives_a_tensor(dev):
    a = od.tensor(A, device=dev)
    for got in (a == a, B < a, A == a):
        assert isinstance(got, od.Tensor) and got.device == od.Device(dev) and got.dtype == np.bool_
    np.testing.assert_array_equal((B < a).numpy(), B < A)


def test_equality_with_non_arrays_is_identity():
    a = od.tensor(A)
    assert (a == None) is False and (a != None) is True  # noqa: E711 - the point
    assert (a == "x") is False
    assert a in (None, a)  # identity first, then == None -> False: no ambiguity


@pytest.mark.parametrize("mode", MODES)
def test_pow_rpow_and_abs(dev, mode):
    x = np.abs(A) + 0.5
    t = od.tensor(x, device=dev)
    np.testing.assert_allclose(_run(mode, lambda v: v ** 2, t), x ** 2, rtol=1e-5)
    np.testing.assert_allclose(_run(mode, lambda v: v ** od.tensor(B, device=dev), t), x ** B, rtol=1e-4)
    np.testing.assert_allclose(_run(mode, lambda v: 2.0 ** v, t), np.float32(2.0) ** x, rtol=1e-5)
    np.testing.assert_array_equal(_run(mode, abs, od.tensor(A, device=dev)), np.abs(A))


# -- scalars, hashing --------------------------------------------------------------------------------------

def test_bool_float_int_item_of_one_element(dev):
    one = od.tensor(np.array([[2.75]], dtype=np.float32), device=dev)
    assert bool(one) is True and float(one) == 2.75 and int(one) == 2
    assert one.item() == 2.75 and isinstance(one.item(), float)
    assert od.tensor(np.array(0.0, np.float32), device=dev).__bool__() is False
    assert od.tensor(np.array([3], np.int64), device=dev).item() == 3
    assert bool(od.tensor(A, device=dev)[0, 0] > -100) if hasattr(od.Tensor, "__getitem__") else True


def test_more_than_one_element_is_ambiguous_as_in_numpy(dev):
    t = od.tensor(A, device=dev)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t == t)
    with pytest.raises(ValueError, match="ambiguous"):
        if t > 0:
            pass
    with pytest.raises(TypeError, match="one element"):
        float(t)
    with pytest.raises(TypeError, match="one element"):
        int(t)
    with pytest.raises(ValueError, match="size 1"):
        t.item()


def test_traced_tensors_still_refuse_their_values():
    @od.function
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(od.GraphTraceError, match="bool"):
        f(od.tensor(A))
    for fn in (lambda x: x.sum().item(), lambda x: x.tolist(), lambda x: float(x.sum()), lambda x: np.sin(x),
               lambda x: pickle.dumps(x), lambda x: x.__dlpack__()):
        with pytest.raises(od.GraphTraceError):
            od.function(fn)(od.tensor(A))


def test_hash_is_identity_so_tensors_key_dicts_and_sets():
    a, b = od.tensor(A), od.tensor(A)
    assert hash(a) != hash(b) or a is b
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2 and len({a, b, a}) == 2
    assert any(t is b for t in [a, b])


def test_gradient_tape_and_optimizers_still_work_with_elementwise_eq():
    w = od.tensor(A)
    with od.GradientTape() as tape:
        tape.watch(w)
        loss = od.sum(od.where(w > 0, w, 0.0) ** 2)
    (g,) = tape.gradient(loss, [w])
    np.testing.assert_allclose(g.numpy(), np.where(A > 0, 2 * A, 0), rtol=1e-6)


# -- methods -----------------------------------------------------------------------------------------------

METHODS = [
    ("T", lambda t: t.T, lambda a: a.T),
    ("sum", lambda t: t.sum(), lambda a: a.sum()),
    ("sum_axis", lambda t: t.sum(axis=0), lambda a: a.sum(axis=0)),
    ("mean_keep", lambda t: t.mean(1, keepdims=True), lambda a: a.mean(1, keepdims=True)),
    ("max", lambda t: t.max(axis=1), lambda a: a.max(axis=1)),
    ("min", lambda t: t.min(), lambda a: a.min()),
    ("argmax", lambda t: t.argmax(), lambda a: a.argmax()),
    ("argmin_axis", lambda t: t.argmin(axis=0), lambda a: a.argmin(axis=0)),
    ("reshape_args", lambda t: t.reshape(2, 6), lambda a: a.reshape(2, 6)),
    ("reshape_tuple", lambda t: t.reshape((4, -1)), lambda a: a.reshape((4, -1))),
    ("reshape_flat", lambda t: t.reshape(-1), lambda a: a.reshape(-1)),
    ("transpose", lambda t: t.transpose(), lambda a: a.transpose()),
    ("transpose_axes", lambda t: t.reshape(3, 2, 2).transpose(2, 0, 1), lambda a: a.reshape(3, 2, 2).transpose(2, 0, 1)),
    ("transpose_tuple", lambda t: t.transpose((1, 0)), lambda a: a.transpose((1, 0))),
    ("flatten", lambda t: t.flatten(), lambda a: a.flatten()),
    ("astype_f64", lambda t: t.astype("float64"), lambda a: a.astype("float64")),
    ("astype_int32", lambda t: t.astype(np.int32), lambda a: a.astype(np.int32)),
    ("astype_int64", lambda t: (t * 3.0).astype("int64"), lambda a: (a * np.float32(3)).astype("int64")),
    ("astype_bool", lambda t: t.astype(bool), lambda a: a.astype(bool)),
    ("astype_int_float", lambda t: (t * 3.0).astype("int32").astype("float32"),
     lambda a: (a * np.float32(3)).astype("int32").astype("float32")),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,method,reference", METHODS, ids=[m[0] for m in METHODS])
def test_methods_match_numpy(dev, mode, name, method, reference):
    got = _run(mode, method, od.tensor(A, device=dev))
    want = np.asarray(reference(A))
    assert got.shape == want.shape
    assert got.dtype == want.dtype or (want.dtype == np.intp and got.dtype == np.int64)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_flatten_method_is_numpys_and_od_flatten_keeps_axis_0():
    t = od.tensor(np.zeros((2, 3, 4), np.float32))
    assert t.flatten().shape == (24,)
    assert od.flatten(t).shape == (2, 12)
    assert od.tensor(np.float32(1.0)).flatten().shape == (1,)


def test_tolist_and_astype_of_the_same_dtype(dev):
    t = od.tensor(A, device=dev)
    assert t.tolist() == A.tolist()
    assert od.tensor(np.float32(1.5), device=dev).tolist() == 1.5
    assert t.astype("float32") is t
    with pytest.raises(od.InvalidArgumentError, match="cast: argument 'dtype'.*allowed: float16"):
        t.astype("complex64")


# -- gradients by finite differences (float64 on numpy:0 and opencl:0) ----------------------------------------

def _numeric_gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


GRADS = [
    ("pow_scalar", lambda t: (t ** 3).sum(), lambda a: (a ** 3).sum()),
    ("pow_tensor", lambda t: (t ** (t * 0.5)).sum(), lambda a: (a ** (a * 0.5)).sum()),
    ("rpow", lambda t: (1.7 ** t).sum(), lambda a: (1.7 ** a).sum()),
    ("abs", lambda t: (abs(t - 1.5) * t).sum(), lambda a: (np.abs(a - 1.5) * a).sum()),
    ("astype_f32", lambda t: (t.astype("float32") * 2.0).astype("float64").sum(), lambda a: (a * 2.0).sum()),
    ("astype_then_square", lambda t: (t.astype("float32") ** 2).sum(), lambda a: (a ** 2).sum()),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,loss,reference", GRADS, ids=[g[0] for g in GRADS])
def test_gradients_against_finite_differences(dev, mode, name, loss, reference):
    x = np.random.default_rng(3).uniform(0.5, 2.5, (2, 3))

    def grad(t):
        with od.GradientTape() as tape:
            tape.watch(t)
            y = loss(t)
        return tape.gradient(y, t)

    fn = od.function(grad) if mode == "graph" else grad
    got = fn(od.tensor(x, device=dev)).numpy()
    assert got.dtype == np.float64
    rtol = 1e-5 if "astype" in name else 1e-6  # the float32 round trip
    np.testing.assert_allclose(got, _numeric_gradient(reference, x), rtol=rtol, atol=1e-6)


def test_no_gradient_flows_through_an_integer_cast():
    t = od.tensor(A.astype(np.float64))
    with od.GradientTape() as tape:
        tape.watch(t)
        y = od.sum(t.astype("int32").astype("float64") * t)
    g = tape.gradient(y, t).numpy()
    np.testing.assert_allclose(g, A.astype(np.float64).astype(np.int32))  # only the direct path


# -- NumPy ufuncs and functions --------------------------------------------------------------------------------

POS = np.abs(A) + 0.25
UFUNCS = [
    ("exp", lambda m, x: m.exp(x)), ("log", lambda m, x: m.log(x)), ("sqrt", lambda m, x: m.sqrt(x)),
    ("tanh", lambda m, x: m.tanh(x)), ("abs", lambda m, x: m.abs(x)), ("square", lambda m, x: m.square(x)),
    ("negative", lambda m, x: m.negative(x)), ("maximum0", lambda m, x: m.maximum(x, 0)),
    ("minimum", lambda m, x: m.minimum(x, x * 0.5)), ("add", lambda m, x: m.add(x, 1.0)),
    ("subtract", lambda m, x: m.subtract(1.0, x)), ("multiply", lambda m, x: m.multiply(x, x)),
    ("divide", lambda m, x: m.divide(x, 2.0)), ("power", lambda m, x: m.power(x, 2.0)),
    ("matmul", lambda m, x: m.matmul(x, m.transpose(x))), ("greater", lambda m, x: m.greater(x, 1.0)),
    ("equal", lambda m, x: m.equal(x, x)),
]
FUNCTIONS = [
    ("concatenate", lambda m, x: m.concatenate([x, x])), ("concatenate1", lambda m, x: m.concatenate([x, x], axis=1)),
    ("stack", lambda m, x: m.stack([x, x], axis=1)), ("sum0", lambda m, x: m.sum(x, axis=0)),
    ("sum", lambda m, x: m.sum(x)), ("mean", lambda m, x: m.mean(x, axis=1, keepdims=True)),
    ("max", lambda m, x: m.max(x)), ("min", lambda m, x: m.min(x, axis=0)), ("argmax", lambda m, x: m.argmax(x, axis=1)),
    ("reshape", lambda m, x: m.reshape(x, (4, 3))), ("transpose", lambda m, x: m.transpose(x)),
    ("where", lambda m, x: m.where(x > 1.0, x, 0.0)), ("clip", lambda m, x: m.clip(x, 0.5, 1.0)),
    ("squeeze", lambda m, x: m.squeeze(m.expand_dims(x, 0))), ("ravel", lambda m, x: m.ravel(x)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,call", UFUNCS + FUNCTIONS, ids=[u[0] for u in UFUNCS + FUNCTIONS])
def test_numpy_calls_with_an_od_equivalent_return_tensors_on_the_device(dev, mode, name, call):
    t = od.tensor(POS, device=dev)

    def fn(x):
        out = call(np, x)
        assert isinstance(out, od.Tensor), type(out)
        return out

    got = _run(mode, fn, t)
    if mode == "eager":
        assert call(np, t).device == od.Device(dev)
    want = np.asarray(call(np, POS))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_numpy_calls_without_an_equivalent_compute_on_the_host(dev):
    t = od.tensor(POS, device=dev)
    sin = np.sin(t)
    assert type(sin) is np.ndarray
    np.testing.assert_allclose(sin, np.sin(POS))
    assert np.allclose(t, POS) and np.array_equal(t, POS)
    assert isinstance(np.percentile(t, 50), np.floating)
    assert type(np.add.reduce(t)) is np.ndarray  # a ufunc method
    assert type(np.sum(t, dtype=np.float64)) is np.float64  # an argument no od op takes
    assert np.sum(t > 1.0) == np.sum(POS > 1.0)  # bool values: od.sum takes floats
    assert np.where(t > 1.0)[0].tolist() == np.where(POS > 1.0)[0].tolist()  # the 1-argument form
    assert np.shape(t) == (3, 4) and np.ndim(t) == 2 and np.size(t) == 12
    assert type(np.asarray(t)) is np.ndarray and np.asarray(t).dtype == np.float32


HOST_ONLY = {"np.sin": lambda t: np.sin(t), "np.percentile": lambda t: np.percentile(t, 50),
             "np.add.reduce": lambda t: np.add.reduce(t), "np.sum(dtype=)": lambda t: np.sum(t, dtype=np.float64),
             "np.where(c)": lambda t: np.where(t > 1.0), "np.asarray": lambda t: np.asarray(t),
             "np.allclose": lambda t: np.allclose(t, POS)}
"""NumPy calls with no od equivalent: computed on host copies eagerly, refused while tracing."""


@pytest.mark.parametrize("call", sorted(HOST_ONLY))
def test_numpy_calls_without_an_equivalent_refuse_to_trace(dev, call):
    """The documented rule in graph mode: a host computation needs values, which are unknown while
    tracing, so it raises GraphTraceError (eagerly the same call gives NumPy's host result)."""
    t = od.tensor(POS, device=dev)
    fn = HOST_ONLY[call]
    assert not isinstance(fn(t), od.Tensor)  # eager: a host result
    with pytest.raises(od.GraphTraceError, match="unknown while tracing|traced"):
        od.function(fn)(t)
    # beside them, a call with an equivalent traces to a node on the tensor's device
    g = od.function(lambda u: (np.exp(u), np.sum(u, axis=0), np.maximum(u, 0)))(t)
    for got, want in zip(g, (np.exp(POS), np.sum(POS, axis=0), np.maximum(POS, 0))):
        assert isinstance(got, od.Tensor) and got.device == od.Device(dev)
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_out_arguments_are_refused(dev, mode):
    t = od.tensor(POS, device=dev)
    with pytest.raises(TypeError, match="out= is not supported"):
        _run(mode, lambda u: np.exp(u, out=np.empty_like(POS)), t)
    with pytest.raises(TypeError, match="out= is not supported"):
        _run(mode, lambda u: np.sum(u, axis=0, out=np.empty(4, np.float32)), t)


def test_ndarray_operators_with_a_tensor_give_tensors():
    t = od.tensor(POS)
    for got, want in [(B + t, B + POS), (B * t, B * POS), (B - t, B - POS), (B / t, B / POS), (B @ t.T, B @ POS.T),
                      (np.abs(B) ** t, np.abs(B) ** POS)]:
        assert isinstance(got, od.Tensor)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


# -- DLPack ----------------------------------------------------------------------------------------------------

def test_dlpack_numpy_to_od_and_back_without_copies():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = od.from_dlpack(x)
    assert t.device == od.Device("numpy:0") and t.shape == (3, 4) and t.dtype == np.float32
    assert np.shares_memory(t.data, x)
    assert t.__dlpack_device__() == (1, 0)
    y = np.from_dlpack(t)
    assert np.shares_memory(y, x)
    np.testing.assert_array_equal((t + 1.0).numpy(), x + 1)


def test_from_dlpack_copies_where_it_must():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    strided = od.from_dlpack(x[:, ::2])
    np.testing.assert_array_equal(strided.numpy(), x[:, ::2])
    assert not np.shares_memory(strided.data, x)
    assert od.from_dlpack(od.tensor(x)).device == od.Device("numpy:0")
    ints = od.from_dlpack(np.arange(5))
    assert ints.dtype == np.int64
    with pytest.raises(od.InvalidArgumentError, match="__dlpack__"):
        od.from_dlpack([1.0, 2.0])


@pytest.mark.skipif("opencl:0" not in DEVICES, reason="no opencl:0")
def test_dlpack_on_opencl_is_a_documented_host_copy():
    x = np.arange(6, dtype=np.float32)
    t = od.from_dlpack(x, device="opencl:0")
    assert t.device == od.Device("opencl:0")
    np.testing.assert_array_equal(t.numpy(), x)
    assert t.__dlpack_device__() == (1, 0)  # what it exports: a host copy
    np.testing.assert_array_equal(np.from_dlpack(t), x)
    with pytest.raises(BufferError, match="copy=None"):
        t.__dlpack__(copy=False)


# -- pickle and deepcopy ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_pickle_and_deepcopy_keep_values_dtype_and_device(dev, dtype):
    t = od.tensor(A.astype(dtype), device=dev)
    for other in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t), copy.copy(t), copy.deepcopy([t, t])[0]):
        assert other is not t
        assert other.device == t.device and other.dtype == t.dtype and other.shape == t.shape
        np.testing.assert_array_equal(other.numpy(), t.numpy())


def test_unpickling_where_the_device_is_missing_is_a_clear_error():
    from opdispatch.tensor import unpickle_tensor

    with pytest.raises(od.DeviceError, match="saved on nosuch:3.*t.numpy"):
        unpickle_tensor(np.zeros(2, np.float32), "nosuch:3")
