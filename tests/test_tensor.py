"""The eager Tensor: creation, metadata, host copies, operators, repr."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od


def test_tensor_from_array_likes_copies_and_keeps_dtype():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = od.tensor(a)
    a[0, 0] = 100  # the tensor owns a copy
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == od.Device("numpy:0")
    assert t.numpy()[0, 0] == 0
    assert od.tensor([1.0, 2.0]).dtype == np.float32  # Python floats: float32, as PyTorch, JAX and TensorFlow
    assert od.tensor([1, 2]).dtype == np.int64
    assert od.tensor(3.5, dtype="float32").shape == ()
    assert od.tensor(t, dtype="float64").dtype == np.float64


def test_numpy_and_asarray_return_copies():
    t = od.tensor([1.0, 2.0])
    n = t.numpy()
    n[0] = 9
    assert np.asarray(t)[0] == 1.0
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("bad", ["text", {"a": 1}, [1.0, "x"], np.array([1 + 2j]), object()])
def test_non_numeric_data_is_refused(bad):
    with pytest.raises(od.DTypeError, match="tensor: argument 'data'"):
        od.tensor(bad)


def test_operators_match_numpy():
    a_np = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    b_np = np.array([[0.5, 2.0], [-1.0, 8.0]], np.float32)
    a, b = od.tensor(a_np), od.tensor(b_np)
    for got, want in [(a + b, a_np + b_np), (a - b, a_np - b_np), (a * b, a_np * b_np), (a / b, a_np / b_np),
                      (a @ b, a_np @ b_np), (-a, -a_np), (a + 1, a_np + 1), (2 - a, 2 - a_np), (3 * a, 3 * a_np),
                      (1 / a, 1 / a_np), (a_np @ b, a_np @ b_np), (b_np + a, b_np + a_np)]:
        assert isinstance(got, od.Tensor)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_python_scalars_take_the_tensor_dtype_but_numpy_arrays_must_match():
    t = od.tensor(np.ones(3, np.float32))
    assert (t * 2.5).dtype == np.float32
    with pytest.raises(od.DTypeError, match="mul: argument 'b' got dtype float64 but 'a' has float32"):
        od.mul(t, np.ones(3))


def test_repr_shows_values_dtype_and_device():
    r = repr(od.tensor([1.5, 2.0], dtype="float32"))
    assert r == "tensor([1.5, 2. ], dtype=float32, device=numpy:0)"
    assert str(od.tensor([1.0])).endswith("@ numpy:0")


def test_tensor_is_not_built_directly_and_scalar_conversions_work():
    with pytest.raises(TypeError, match="od.tensor"):
        od.Tensor()
    assert float(od.sum(od.tensor([1.0, 2.0]))) == 3.0
    assert len(od.tensor(np.zeros((4, 2)))) == 4
    assert od.tensor(np.zeros((4, 2))).ndim == 2 and od.tensor(np.zeros((4, 2))).size == 8


def test_to_same_device_is_identity():
    t = od.tensor([1.0])
    assert t.to("numpy:0") is t
    assert t.to("cpu") is t


def test_python_scalars_take_the_dtype_of_a_numpy_float_input_like_numpy():
    assert od.add(np.ones(3, np.float32), 2.0).dtype == np.float32
    assert od.mul(2.0, np.ones(3, np.float64)).dtype == np.float64


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">i8", "<i4"])
def test_non_native_byte_order_becomes_native(dtype):
    data = np.array([1, 0, 2], dtype=dtype)
    t = od.tensor(data)
    assert t.dtype.isnative and t.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(t.numpy(), [1, 0, 2])
    logits = od.tensor(np.arange(9.0).reshape(3, 3))
    assert float(od.softmax_cross_entropy(logits, data.astype(">i8") if data.dtype.kind == "f" else data)) == \
        pytest.approx(float(od.softmax_cross_entropy(logits, np.array([1, 0, 2]))))
