"""Integer and bool tensors through comparisons, argmax and where: dispatch on the compute dtype,
per-op kernel dtypes, eager and od.function (save and load of a graph with bool nodes), the
gradient tape, on numpy:0 and opencl:0; and exact conformance comparison of int/bool results."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_float_only
from opdispatch.dtypes import KERNEL_DTYPES
from opdispatch.ops import OPS
from opdispatch.schema import TensorMeta
from opdispatch_conformance.tolerance import Tolerance, compare


def _devices():
    out = ["numpy:0"]
    if any(str(d) == "opencl:0" for d in od.devices()):
        out.append("opencl:0")
    return out


DEVICES = _devices()


def test_compute_dtype_is_the_first_value_input():
    f32 = TensorMeta((2,), np.dtype("float32"))
    assert OPS["equal"].compute_dtype([f32, f32], np.dtype("bool")) == np.float32
    assert OPS["where"].compute_dtype([TensorMeta((2,), np.dtype("bool")), f32, f32], f32.dtype) == np.float32
    assert OPS["argmax"].compute_dtype([TensorMeta((2,), np.dtype("int32"))], np.dtype("int64")) == np.int32
    for schema in OPS.values():  # every float op dispatches on what it did before: its output dtype
        if all(i.kind in ("float", "int") for i in schema.inputs) and any(i.kind == "float" for i in schema.inputs):
            assert schema.compute_dtype([f32] * len(schema.inputs), f32.dtype) == np.float32


def test_kernels_declare_int_dtypes_only_for_ops_taking_them():
    assert {"int32", "int64", "bool"} <= {d.name for d in KERNEL_DTYPES}
    table = od.registry.registry().runtime(od.Device("numpy:0")).candidates
    assert np.dtype("int32") in table["equal"][0].kernel.dtype_set
    assert np.dtype("int32") not in table["add"][0].kernel.dtype_set
    with pytest.raises(od.DTypeError, match="add: argument 'a' got dtype int32"):
        od.add(od.tensor(np.array([1], np.int32)), od.tensor(np.array([1], np.int32)))


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_int_tensors_through_comparisons_argmax_where(dev, dtype):
    rng = np.random.default_rng(3)
    a = rng.integers(-5, 5, (4, 6)).astype(dtype)
    t = od.tensor(a, device=dev)
    eq = od.equal(t, 3)  # a Python int takes the tensor's dtype
    assert eq.dtype == np.bool_ and eq.device == od.Device(dev)
    np.testing.assert_array_equal(eq.numpy(), a == 3)
    np.testing.assert_array_equal(od.less_equal(t, od.tensor(a[0], device=dev)).numpy(), a <= a[0])
    np.testing.assert_array_equal(od.argmax(t, axis=1).numpy(), a.argmax(axis=1))
    np.testing.assert_array_equal(od.argmin(t).numpy(), a.argmin())
    w = od.where(od.greater(t, 0), t, -1)
    assert w.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(w.numpy(), np.where(a > 0, a, -1).astype(dtype))
    b = od.tensor(a > 0, device=dev)
    np.testing.assert_array_equal(od.equal(b, od.tensor(a < 2, device=dev)).numpy(), (a > 0) == (a < 2))


@pytest.mark.parametrize("dev", DEVICES)
def test_a_python_number_of_a_wider_kind_compares_as_numpy_promotes(dev):
    """bool tensor vs an int or float, int tensor vs a float: NumPy's result (the tensor is widened),
    through the functions, the operators (either side), NumPy's ufuncs and od.function."""
    ints, mask = np.array([1, 2, 3], np.int32), np.array([True, False, True])
    t, b = od.tensor(ints, device=dev), od.tensor(mask, device=dev)
    cases = [(od.equal(t, 2.0), ints == 2.0), (od.less(t, 2.5), ints < 2.5), (t > 1.5, ints > 1.5),
             (2.5 > t, 2.5 > ints), (t < float("inf"), ints < np.inf), (t != float("nan"), ints != np.nan),
             (b > 0, mask > 0), (b == 1, mask == 1), (b < 0.5, mask < 0.5), (0 < b, 0 < mask),
             (np.greater(b, 0), np.greater(mask, 0)), (np.less(t, 2.5), np.less(ints, 2.5)),
             (od.function(lambda x: x >= 1.5)(t), ints >= 1.5)]
    for got, want in cases:
        assert isinstance(got, od.Tensor) and got.dtype == np.bool_ and got.device == od.Device(dev)
        np.testing.assert_array_equal(got.numpy(), want)


def test_tensors_of_two_dtypes_are_still_refused():
    t = od.tensor(np.array([1, 2], np.int32))
    with pytest.raises(od.DTypeError, match="'b' got dtype float32 but 'a' has int32"):
        od.equal(t, od.tensor([2.5, 1.0]))
    with pytest.raises(od.DTypeError, match="'b' got dtype int32 but 'a' has bool"):
        od.greater(od.tensor([True, False]), t)


@pytest.mark.parametrize("dev", DEVICES)
def test_graph_with_bool_and_int_nodes_saves_and_loads(dev, tmp_path):
    def f(x, labels):
        mask = od.greater(x, 0)
        y = od.where(mask, x, 0)
        return od.sum(y), od.argmax(x, axis=1), od.equal(od.argmax(x, axis=1), labels), mask

    rng = np.random.default_rng(4)
    x = od.tensor(rng.standard_normal((3, 5)).astype(np.float32), device=dev)
    labels = od.tensor(np.array([0, 1, 2], np.int64), device=dev)
    fn = od.function(f)
    want = f(x, labels)
    got = fn(x, labels)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    path = str(tmp_path / "g.json")
    fn.graph(x, labels).save(path)
    loaded = od.load_graph(path)
    for g, w in zip(loaded(x, labels), want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())


@pytest.mark.parametrize("dev", DEVICES)
def test_gradient_through_where_eager_and_graph(dev):
    x0 = np.array([-1.0, 2.0, 0.0, 3.0], np.float32)

    def grad(x):
        with od.GradientTape() as tape:
            tape.watch(x)
            y = od.sum(od.where(od.greater(x, 0), x, 0) * x)
        return tape.gradient(y, x)

    x = od.tensor(x0, device=dev)
    np.testing.assert_allclose(grad(x).numpy(), [0.0, 4.0, 0.0, 6.0])
    np.testing.assert_allclose(od.function(grad)(x).numpy(), [0.0, 4.0, 0.0, 6.0])


def test_conformance_compares_int_and_bool_results_exactly():
    tol = Tolerance(rtol=1.0, atol=1.0, eps=1.0, reduction_length=1, factor=1.0, dtype="float32")
    assert compare(np.array([1, 2], np.int64), np.array([1, 2], np.int64), tol).ok
    assert not compare(np.array([1, 3], np.int64), np.array([1, 2], np.int64), tol).ok
    assert not compare(np.array([True, False]), np.array([True, True]), tol).ok
    assert not compare(np.array([1.0, 0.0]), np.array([True, False]), tol).ok


# -- integer data on a float-only device (the documented contract of opdispatch_from_numpy) ------------

INT_AND_BOOL = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"]


@pytest.fixture
def float_only(clean_registry):
    """The in-process float32-only backend ``f32only:0``: its plugin, the dtypes its from_numpy received
    and those of every kernel call's arrays."""
    plugin, received, kernel_inputs = make_float_only()
    status = od.register_plugin(plugin)
    assert status.status == "loaded", status
    assert od.device_info("f32only:0").dtypes == ("float32",)
    return od.Device("f32only:0"), received, kernel_inputs


@pytest.mark.parametrize("dtype", INT_AND_BOOL)
def test_integer_and_bool_arrays_reach_from_numpy_of_a_float_only_device_unchanged(float_only, dtype):
    """hookspecs.opdispatch_from_numpy: 'any integer or bool dtype, on every device', and they come back
    unchanged through to_numpy."""
    dev, received, _ = float_only
    values = np.array([[0, 1, 1], [1, 0, 1]]).astype(dtype)
    t = od.tensor(values, device=dev)
    assert received == [np.dtype(dtype)]
    assert t.device == dev and t.dtype == np.dtype(dtype)
    back = t.numpy()
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, values)


def test_a_float_dtype_the_device_lacks_is_refused_before_from_numpy(float_only):
    dev, received, _ = float_only
    with pytest.raises(od.DTypeError, match="dtype float64 is not supported on device f32only:0"):
        od.tensor(np.zeros(3, np.float64), device=dev)
    assert received == []


@pytest.mark.parametrize("labels_dtype", ["int64", "int32"])
def test_cross_entropy_with_int_labels_runs_on_a_float32_only_device(float_only, labels_dtype):
    """int64 (and int32) class labels live on the float32-only device as its own arrays and reach its
    loss kernel and the loss's backward kernel there; loss and gradient equal numpy:0's."""
    dev, received, kernel_inputs = float_only
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 3, 2], labels_dtype)

    def loss_and_grad(device, labels_arg):
        x = od.tensor(logits, device=device)
        with od.GradientTape() as tape:
            tape.watch(x)
            loss = od.softmax_cross_entropy(x, labels_arg(device))
        return loss, tape.gradient(loss, x)

    ref_loss, ref_grad = loss_and_grad("numpy:0", lambda d: od.tensor(labels, device=d))
    for labels_arg in (lambda d: od.tensor(labels, device=d), lambda d: labels):  # a tensor, a host array
        received.clear()
        kernel_inputs.clear()
        loss, grad = loss_and_grad(dev, labels_arg)
        assert loss.device == dev and grad.device == dev
        assert np.dtype(labels_dtype) in received  # the labels went through from_numpy as they are
        assert ("float32", labels_dtype) in kernel_inputs  # softmax_cross_entropy(logits, labels)
        assert ("float32", labels_dtype, "float32") in kernel_inputs  # its backward(logits, labels, dloss)
        np.testing.assert_allclose(loss.numpy(), ref_loss.numpy(), rtol=1e-6)
        np.testing.assert_allclose(grad.numpy(), ref_grad.numpy(), rtol=1e-6)


def test_an_int_result_computed_elsewhere_comes_home_to_the_float_only_device(float_only):
    """argmax has no kernel on f32only:0: under fallback='record' it runs on numpy:0 and its int64
    result returns through the float-only device's from_numpy."""
    dev, received, _ = float_only
    values = np.array([[0.5, 2.0, -1.0], [3.0, 0.0, 1.0]], np.float32)
    x = od.tensor(values, device=dev)
    received.clear()
    with od.device(None, fallback="record"):
        idx = od.argmax(x, axis=1)
    assert idx.device == dev and idx.dtype == np.int64
    assert received == [np.dtype("int64")]
    np.testing.assert_array_equal(idx.numpy(), [1, 0])
