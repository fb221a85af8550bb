"""The Tensor: creation, metadata, host copies, operators, repr; on numpy:0 and opencl:0, the operators
eagerly and under od.function."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from device_params import DEVICES, MODES, in_mode


@pytest.mark.parametrize("dev", DEVICES)
def test_tensor_from_array_likes_copies_and_keeps_dtype(dev):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = od.tensor(a, device=dev)
    a[0, 0] = 100  # the tensor owns a copy
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == od.Device(dev)
    assert t.numpy()[0, 0] == 0
    with od.device(dev):
        assert od.tensor([1.0, 2.0]).dtype == np.float32  # Python floats: float32, as PyTorch, JAX and TensorFlow
        assert od.tensor([1, 2]).dtype == np.int64 and od.tensor([1, 2]).device == od.Device(dev)
        assert od.tensor(3.5, dtype="float32").shape == ()
        assert od.tensor(t, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("dev", DEVICES)
def test_numpy_and_asarray_return_copies(dev):
    t = od.tensor([1.0, 2.0], device=dev)
    n = t.numpy()
    n[0] = 9
    assert np.asarray(t)[0] == 1.0
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("bad", ["text", {"a": 1}, [1.0, "x"], np.array([1 + 2j]), object()])
def test_non_numeric_data_is_refused(bad):
    with pytest.raises(od.DTypeError, match="tensor: argument 'data'"):
        od.tensor(bad)


def _operators(a, b, a_np, b_np):
    """(operator results, NumPy's): tensor/tensor, tensor/scalar, reflected, and ndarray operands."""
    got = (a + b, a - b, a * b, a / b, a @ b, -a, a + 1, 2 - a, 3 * a, 1 / a, a_np @ b, b_np + a)
    want = (a_np + b_np, a_np - b_np, a_np * b_np, a_np / b_np, a_np @ b_np, -a_np, a_np + 1, 2 - a_np, 3 * a_np,
            1 / a_np, a_np @ b_np, b_np + a_np)
    return got, want


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_operators_match_numpy(dev, mode):
    a_np = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    b_np = np.array([[0.5, 2.0], [-1.0, 8.0]], np.float32)
    got = in_mode(lambda a, b: _operators(a, b, a_np, b_np)[0], mode)(od.tensor(a_np, device=dev),
                                                                      od.tensor(b_np, device=dev))
    for g, want in zip(got, _operators(a_np, b_np, a_np, b_np)[1]):
        assert isinstance(g, od.Tensor) and g.device == od.Device(dev)
        assert g.dtype == np.float32
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_python_scalars_take_the_tensor_dtype_but_numpy_arrays_must_match(dev, mode):
    t = od.tensor(np.ones(3, np.float32), device=dev)
    assert in_mode(lambda x: x * 2.5, mode)(t).dtype == np.float32
    assert in_mode(lambda x: x * 2.5, mode)(t.astype("float64")).dtype == np.float64
    with pytest.raises(od.DTypeError, match="mul: argument 'b' got dtype float64 but 'a' has float32"):
        in_mode(lambda x: od.mul(x, np.ones(3)), mode)(t)


@pytest.mark.parametrize("dev", DEVICES)
def test_repr_shows_values_dtype_and_device(dev):
    r = repr(od.tensor([1.5, 2.0], dtype="float32", device=dev))
    assert r == f"tensor([1.5, 2. ], dtype=float32, device={dev})"
    assert str(od.tensor([1.0], device=dev)).endswith(f"@ {dev}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_tensor_is_not_built_directly_and_scalar_conversions_work(dev, mode):
    with pytest.raises(TypeError, match="od.tensor"):
        od.Tensor()
    assert float(in_mode(od.sum, mode)(od.tensor([1.0, 2.0], device=dev))) == 3.0
    t = od.tensor(np.zeros((4, 2)), device=dev)
    assert len(t) == 4 and t.ndim == 2 and t.size == 8


@pytest.mark.parametrize("dev", DEVICES)
def test_to_same_device_is_identity(dev):
    t = od.tensor([1.0], device=dev)
    assert t.to(dev) is t and t.to(od.Device(dev)) is t
    if dev == "numpy:0":
        assert t.to("cpu") is t  # "cpu" is the default CPU device
    else:
        assert t.to("cpu").device == od.Device("numpy:0")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dev", DEVICES)
def test_python_scalars_take_the_dtype_of_a_numpy_float_input_like_numpy(dev, mode):
    with od.device(dev):
        assert in_mode(lambda: od.add(np.ones(3, np.float32), 2.0), mode)().dtype == np.float32
        assert in_mode(lambda: od.mul(2.0, np.ones(3, np.float64)), mode)().dtype == np.float64


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">i8", "<i4"])
def test_non_native_byte_order_becomes_native(dtype, dev):
    data = np.array([1, 0, 2], dtype=dtype)
    t = od.tensor(data, device=dev)
    assert t.dtype.isnative and t.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(t.numpy(), [1, 0, 2])
    logits = od.tensor(np.arange(9.0).reshape(3, 3), device=dev)
    assert float(od.softmax_cross_entropy(logits, data.astype(">i8") if data.dtype.kind == "f" else data)) == \
        pytest.approx(float(od.softmax_cross_entropy(logits, np.array([1, 0, 2]))))
