"""Default dtypes: Python floats (and sequences of them) become float32, Python ints int64, bools
bool; NumPy data keeps its dtype; weak Python scalars take a tensor's dtype; mixed float32/float64
inputs raise; float16 only where a device declares it."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

DEVICES = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]
F16, F32, F64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
I64 = np.dtype("int64")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("data, dtype", [
    (1.0, F32), ([1.0, 2.0], F32), ([[1, 2.5], [3, 4]], F32), ((0.5,), F32), (float("nan"), F32),
    (1, I64), ([1, 2, 3], I64), (True, np.dtype(bool)), ([True, False], np.dtype(bool)),
    (np.float64(1.0), F64), (np.zeros(2), F64), (np.zeros(2, np.float32), F32), (np.arange(3, dtype=np.int32),
                                                                                np.dtype("int32")),
    ([np.float32(1.0), 2.0], F32),
])
def test_od_tensor_default_dtype(device, data, dtype):
    t = od.tensor(data, device=device)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


def test_an_explicit_dtype_wins():
    assert od.tensor(1.0, dtype="float64").dtype == F64
    assert od.tensor([1, 2], dtype="float32").dtype == F32
    assert od.tensor(np.zeros(2), dtype="float32").dtype == F32
    assert od.tensor(od.tensor([1.0], dtype="float64")).dtype == F64  # a tensor keeps its dtype


def test_a_python_float_out_of_float32_range_is_an_error_not_a_silent_inf():
    with pytest.raises(od.DTypeError, match="1e\\+300, out of range for float32.*dtype='float64'"):
        od.tensor([1.0, 1e300])
    assert od.tensor([1e300], dtype="float64").numpy()[0] == 1e300
    assert np.isinf(od.tensor(float("inf")).numpy())  # inf itself is fine


@pytest.mark.parametrize("device", DEVICES)
def test_python_data_passed_to_ops_is_float32_too(device):
    with od.device(device):
        assert od.relu([1.0, -2.0]).dtype == F32
        assert od.add(1.0, 2.0).dtype == F32
        assert od.mul([1.0, 2.0], [3.0, 4.0]).dtype == F32


@pytest.mark.parametrize("device", DEVICES)
def test_weak_python_scalars_take_the_tensor_dtype(device):
    x64 = od.tensor(np.array([1.0, 2.0]), device=device)
    x32 = od.tensor([1.0, 2.0], device=device)
    assert (x64 + 1.0).dtype == F64 and (1.0 * x64).dtype == F64 and (x64 / 3).dtype == F64
    assert (x32 + 1.0).dtype == F32 and (x32 - 1).dtype == F32
    assert od.maximum(x64, 0.0).dtype == F64
    np.testing.assert_array_equal((x64 + 0.1).numpy(), np.array([1.0, 2.0]) + 0.1)  # 0.1 in float64, not float32


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_float32_and_float64_inputs_raise_clearly(device):
    x32 = od.tensor([1.0, 2.0], device=device)
    x64 = od.tensor(np.array([1.0, 2.0]), device=device)
    with pytest.raises(od.DTypeError, match="add: argument 'b' got dtype float64 but 'a' has float32.*dtype="):
        x32 + x64
    with pytest.raises(od.DTypeError, match="float32"):
        od.matmul(od.tensor(np.eye(2)), od.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # the remedy the message names works
    assert (x32 + od.tensor(x64.numpy(), dtype="float32", device=device)).dtype == F32


def test_what_each_backend_declares():
    assert set(od.device_info("numpy:0").dtype_set) == {F16, F32, F64}
    assert "float16 computed in float32" in od.device_info("numpy:0").name
    if "opencl:0" in DEVICES:
        assert {F16, F32} <= od.device_info("opencl:0").dtype_set
        assert "float16 computed in float32" in od.device_info("opencl:0").name


def test_float16_where_unsupported_is_a_clear_error(clean_registry):
    from opdispatch.backend import DeviceInfo
    from fake_backends import make_plugin

    od.register_plugin(make_plugin("nohalf", [], devices=[DeviceInfo(0, dtypes=("float32", "float64"))]))
    with pytest.raises(od.DTypeError, match="tensor: dtype float16 is not supported on device nohalf:0; "
                                            "allowed there: float32.*convert with dtype='float32'"):
        od.tensor(np.zeros(2, np.float16), device="nohalf:0")
    with pytest.raises(od.DTypeError, match="ones: dtype float16 is not supported on device nohalf:0"):
        od.ones(2, dtype="float16", device="nohalf:0")
    with pytest.raises(od.DTypeError, match="float16 is not supported on device nohalf:0"):
        od.random.normal(3, dtype="float16", device="nohalf:0")


def test_float64_hint_on_a_device_without_float64():
    for d in od.devices():
        floats = od.device_info(d).dtype_set
        if F32 in floats and F64 not in floats:
            with pytest.raises(od.DTypeError, match="convert with dtype='float32'"):
                od.tensor(np.zeros(2), device=d)


def test_graphs_take_python_floats_as_their_input_dtype():
    @od.function
    def f(x):
        return x * 2.0

    assert f(od.tensor([1.0, 2.0])).dtype == F32
    assert f(od.tensor(np.array([1.0, 2.0]))).dtype == F64
