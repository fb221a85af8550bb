"""od.zeros, ones, full, zeros_like, ones_like, arange, linspace, eye: values, dtypes and devices
against NumPy on numpy:0 and opencl:0, errors, and what they are inside od.function."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from device_params import DEVICES  # numpy:0 and opencl:0 (skipped with the reason where absent)

AVAILABLE = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]


def _same(t, expected, device):
    assert isinstance(t, od.Tensor)
    assert str(t.device) == device
    assert t.dtype == expected.dtype, (t.dtype, expected.dtype)
    assert t.shape == expected.shape
    np.testing.assert_array_equal(t.numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_zeros_ones_full_match_numpy(device):
    _same(od.zeros((2, 3), device=device), np.zeros((2, 3), np.float32), device)
    _same(od.zeros(4, device=device), np.zeros(4, np.float32), device)
    _same(od.zeros((), device=device), np.zeros((), np.float32), device)
    _same(od.zeros((0, 5), device=device), np.zeros((0, 5), np.float32), device)
    _same(od.ones([3], dtype="float64", device=device), np.ones(3), device)
    _same(od.ones((2, 2), dtype="int32", device=device), np.ones((2, 2), np.int32), device)
    _same(od.ones(3, dtype=bool, device=device), np.ones(3, bool), device)
    _same(od.full((2,), 0.5, device=device), np.full(2, 0.5, np.float32), device)
    # dtype default float32 whatever the value (API.md): an int, a bool or a NumPy scalar too
    _same(od.full((2,), 7, device=device), np.full(2, 7, np.float32), device)
    _same(od.full(3, True, device=device), np.full(3, 1.0, np.float32), device)
    _same(od.full(2, np.float64(0.1), device=device), np.full(2, 0.1, np.float32), device)
    _same(od.full((2,), 7, dtype="int64", device=device), np.full(2, 7, np.int64), device)
    _same(od.full(3, True, dtype=bool, device=device), np.full(3, True), device)
    _same(od.full(2, np.float64(0.1), dtype="float64", device=device), np.full(2, 0.1), device)
    _same(od.full(2, 3, dtype="float32", device=device), np.full(2, 3, np.float32), device)
    _same(od.full(2, float("-inf"), device=device), np.full(2, -np.inf, np.float32), device)


def test_the_current_device_is_the_default():
    for device in AVAILABLE:
        with od.device(device):
            for t in (od.zeros(2), od.ones(2), od.full(2, 1.0), od.arange(3), od.linspace(0, 1, 3), od.eye(2)):
                assert str(t.device) == device


@pytest.mark.parametrize("device", DEVICES)
def test_like_keeps_dtype_and_device(device):
    t = od.tensor(np.arange(6, dtype=np.float64).reshape(2, 3), device=device)
    _same(od.zeros_like(t), np.zeros((2, 3)), device)
    _same(od.ones_like(t), np.ones((2, 3)), device)
    i = od.tensor([1, 2, 3], device=device)
    _same(od.ones_like(i), np.ones(3, np.int64), device)
    _same(od.zeros_like(t, dtype="float32"), np.zeros((2, 3), np.float32), device)
    other = "numpy:0" if device != "numpy:0" else AVAILABLE[-1]
    _same(od.zeros_like(t, device=other), np.zeros((2, 3)), other)
    with od.device(device):
        _same(od.ones_like(np.zeros((2,), np.int32)), np.ones(2, np.int32), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("args", [(5,), (2, 7), (7, 2, -2), (0,), (3, 3), (5, 1), (-3, 4, 2), (10, 0, -3)])
def test_arange_ints_is_float32_by_default_and_int64_on_request(device, args):
    # dtype default float32 (API.md), int arguments included; dtype= gives NumPy's int values
    _same(od.arange(*args, device=device), np.arange(*args, dtype=np.float32), device)
    _same(od.arange(*args, dtype="int64", device=device), np.arange(*args, dtype=np.int64), device)
    _same(od.arange(*args, dtype="int32", device=device), np.arange(*args, dtype=np.int32), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("args", [(2.5,), (0, 1, 0.1), (1.0, 0.0, -0.25), (0, 5, 1.5), (-1, 1, 0.3), (0.5, 3)])
def test_arange_floats_is_float32_rounded_once(device, args):
    # NumPy's length and values in float64, rounded to float32
    expected = np.arange(*args, dtype=np.float64).astype(np.float32)
    _same(od.arange(*args, device=device), expected, device)
    _same(od.arange(*args, dtype="float64", device=device), np.arange(*args, dtype=np.float64), device)


def test_arange_dtype_keyword():
    _same(od.arange(4, dtype="float32"), np.arange(4, dtype=np.float32), "numpy:0")
    _same(od.arange(4, dtype="int32"), np.arange(4, dtype=np.int32), "numpy:0")
    _same(od.arange(np.int64(3)), np.arange(3, dtype=np.float32), "numpy:0")
    _same(od.arange(np.int64(3), dtype="int64"), np.arange(3), "numpy:0")
    _same(od.arange(5, dtype=bool), np.arange(5).astype(bool), "numpy:0")


@pytest.mark.parametrize("device", DEVICES)
def test_linspace_and_eye_match_numpy(device):
    _same(od.linspace(0, 1, 5, device=device), np.linspace(0, 1, 5).astype(np.float32), device)
    _same(od.linspace(-2.5, 7, 13, dtype="float64", device=device), np.linspace(-2.5, 7, 13), device)
    _same(od.linspace(0, 1, 4, endpoint=False, device=device), np.linspace(0, 1, 4, endpoint=False,
                                                                               dtype=np.float32), device)
    _same(od.linspace(0, 10, 4, dtype="int64", device=device), np.linspace(0, 10, 4, dtype=np.int64), device)
    _same(od.linspace(3, 3, 1, device=device), np.linspace(3, 3, 1, dtype=np.float32), device)
    _same(od.linspace(0, 1, 0, device=device), np.zeros(0, np.float32), device)
    _same(od.linspace(0, 1, device=device), np.linspace(0, 1, dtype=np.float32), device)  # num=50 as NumPy
    _same(od.eye(3, device=device), np.eye(3, dtype=np.float32), device)
    _same(od.eye(2, 4, k=1, device=device), np.eye(2, 4, 1, dtype=np.float32), device)
    _same(od.eye(3, k=-1, dtype="int64", device=device), np.eye(3, k=-1, dtype=np.int64), device)
    _same(od.eye(0, device=device), np.eye(0, dtype=np.float32), device)


@pytest.mark.parametrize("call, error, words", [
    (lambda: od.zeros(-1), od.InvalidArgumentError, "zeros: argument 'shape' got -1"),
    (lambda: od.ones((2, -3)), od.InvalidArgumentError, "ones: argument 'shape'"),
    (lambda: od.zeros((2.0, 3)), od.InvalidArgumentError, "zeros: argument 'shape'"),
    (lambda: od.zeros("abc"), od.InvalidArgumentError, "zeros: argument 'shape'"),
    (lambda: od.zeros(2**40), od.InvalidArgumentError, "zeros: argument 'shape'"),
    (lambda: od.zeros(2, dtype="complex64"), od.DTypeError, "zeros: argument 'dtype' got 'complex64'; allowed:"),
    (lambda: od.zeros(2, dtype="nonsense"), od.DTypeError, "zeros: argument 'dtype'"),
    (lambda: od.ones(2, dtype="uint8"), od.DTypeError, "ones: argument 'dtype'"),
    (lambda: od.full(2, "x"), od.InvalidArgumentError, "full: argument 'value'"),
    (lambda: od.full(2, 1e300), od.DTypeError, "out of range for float32"),
    (lambda: od.full(2, 2**40, dtype="int32"), od.DTypeError, "full: argument 'value'"),
    (lambda: od.zeros_like([1.0, 2.0]), od.InvalidArgumentError, "zeros_like: argument 't'"),
    (lambda: od.arange(0, 5, 0), od.InvalidArgumentError, "arange: argument 'step' got 0"),
    (lambda: od.arange("a"), od.InvalidArgumentError, "arange: argument 'stop'"),
    (lambda: od.arange(0, float("inf")), od.InvalidArgumentError, "finite"),
    (lambda: od.arange(True), od.InvalidArgumentError, "arange"),
    (lambda: od.arange(0, 2**40), od.InvalidArgumentError, "arange: argument 'stop'"),
    (lambda: od.linspace(0, 1, -1), od.InvalidArgumentError, "linspace: argument 'num' got -1"),
    (lambda: od.linspace(0, 1, 2.5), od.InvalidArgumentError, "linspace: argument 'num'"),
    (lambda: od.eye(-2), od.InvalidArgumentError, "eye: argument 'n' got -2"),
    (lambda: od.eye(2, k=0.5), od.InvalidArgumentError, "eye: argument 'k'"),
    (lambda: od.zeros(2, device="nosuch:0"), od.DeviceError, "nosuch"),
])
def test_errors_name_the_constructor_and_what_is_allowed(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value), str(info.value)


def test_float64_on_a_device_without_it_is_a_clear_error():
    fp32_only = [d for d in od.devices() if "float64" not in {t.name for t in od.device_info(d).dtype_set}]
    for d in fp32_only:
        with pytest.raises(od.DTypeError, match="float64 is not supported on device"):
            od.zeros(2, dtype="float64", device=d)


def test_under_od_function_constructors_are_graph_constants():
    @od.function
    def f(x):
        return x + od.ones(x.shape) * 2.0 + od.arange(3, dtype="float32")

    x = od.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(f(x).numpy(), np.array([3.0, 5.0, 7.0], np.float32))
    np.testing.assert_array_equal(f(od.zeros(3)).numpy(), np.array([2.0, 3.0, 4.0], np.float32))
    assert f.graph(x, optimized=False).constants  # the constructed tensors are constants of the graph


def test_zeros_like_of_a_traced_tensor_reads_only_its_shape():
    @od.function
    def f(x):
        return od.zeros_like(x) + x

    x = od.tensor([[1.5, -2.0]])
    np.testing.assert_array_equal(f(x).numpy(), x.numpy())


def test_gradient_tape_treats_constructed_tensors_as_constants():
    x = od.tensor([1.0, 2.0])
    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.sum(x * od.full(2, 3.0))
    (g,) = tape.gradient(y, [x])
    np.testing.assert_array_equal(g.numpy(), np.array([3.0, 3.0], np.float32))


CONSTRUCTED = {
    "zeros": lambda x: od.zeros((2, 3)),
    "ones-float64": lambda x: od.ones(4, dtype="float64"),
    "full": lambda x: od.full((2,), 7),
    "full-int64": lambda x: od.full((2,), 7, dtype="int64"),
    "zeros_like": lambda x: od.zeros_like(x),
    "ones_like-int32": lambda x: od.ones_like(x, dtype="int32"),
    "arange": lambda x: od.arange(5),
    "arange-int64": lambda x: od.arange(2, 9, 3, dtype="int64"),
    "linspace": lambda x: od.linspace(0, 1, 5),
    "eye": lambda x: od.eye(3, k=1),
    "normal": lambda x: od.random.Generator(3).normal((2, 2)),
    "uniform": lambda x: od.random.Generator(3).uniform((3,), low=-1.0, high=2.0),
    "used": lambda x: x * od.full(x.shape, 3.0) + od.arange(3),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
def test_every_constructor_in_graph_mode_matches_eager(name, device):
    """Under od.function on the current device, each constructor gives eager's values, dtype and device
    (a graph constant), alone as an output or used with an input."""
    make = CONSTRUCTED[name]
    x = od.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=device)
    with od.device(device):
        eager = make(x)
        graph = od.function(make)(x)
    _same(graph, eager.numpy(), device)
    assert graph.dtype == eager.dtype
