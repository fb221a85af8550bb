"""Eager dispatch: devices of inputs, missing kernels, fallback policies, kernel errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import opdispatch as od
from fake_backends import Box, make_broken, make_mini, make_plugin
from opdispatch.backend import Kernel


@pytest.fixture
def mini(clean_registry):
    od.register_plugin(make_mini(), name="mini")
    od.clear_placement_log()
    yield
    od.clear_placement_log()


def test_op_runs_on_the_device_of_its_inputs(mini):
    x = od.tensor(np.array([-1.0, 2.0], np.float32), device="mini:1")
    assert isinstance(x.data, Box)
    y = od.relu(x)
    assert y.device == "mini:1" and isinstance(y.data, Box)
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0])
    with od.device("numpy:0"):
        assert od.add(x, x).device == "mini:1"  # inputs decide, not the context


def test_ops_without_tensor_inputs_run_on_the_context_device(mini):
    with od.device("mini:0"):
        y = od.relu(np.array([-3.0, 3.0], np.float32))
    assert y.device == "mini:0"


def test_inputs_on_two_devices_fail_naming_both(mini):
    a = od.tensor(np.ones(2, np.float32), device="mini:0")
    b = od.tensor(np.ones(2, np.float32), device="numpy:0")
    with pytest.raises(od.DeviceMismatchError, match=r"add: .*'a' on mini:0.*'b' on numpy:0"):
        od.add(a, b)


def test_copies_across_devices_are_visible_under_a_policy(mini):
    a = od.tensor(np.ones(2, np.float32), device="mini:0")
    b = od.tensor(np.full(2, 2.0, np.float32), device="numpy:0")
    with od.device("mini:0", fallback="warn"):
        with pytest.warns(od.PlacementWarning, match=r"copied 'b' from numpy:0 to mini:0"):
            y = od.add(a, b)
    assert y.device == "mini:0"
    np.testing.assert_array_equal(y.numpy(), [3.0, 3.0])
    assert len(od.placement_log()) == 1


def test_missing_kernel_names_op_device_and_what_is_missing(mini):
    x = od.tensor(np.ones((1, 1, 3, 3), np.float32), device="mini:0")
    with pytest.raises(od.UnsupportedError, match=r"max_pool2d: cannot run on mini:0: backend 'mini' has no "
                                                  r"kernel for max_pool2d.*fallback='warn'"):
        od.max_pool2d(x, 2)


def test_missing_dtype_and_declared_limit_are_named(mini):
    with pytest.raises(od.DTypeError, match="float64 is not supported on device mini:0"):
        od.tensor(np.ones(2), device="mini:0")
    x = od.tensor(np.ones((1, 2, 3, 3), np.float32), device="mini:0")
    w = od.tensor(np.ones((2, 1, 1, 1), np.float32), device="mini:0")
    with pytest.raises(od.UnsupportedError, match="conv2d: cannot run on mini:0: groups > 1 is not implemented"):
        od.conv2d(x, w, groups=2)


def test_fallback_warn_runs_elsewhere_and_returns_to_the_asked_device(mini):
    xn = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    x = od.tensor(xn, device="mini:0")
    with od.device(None, fallback="warn"):
        with pytest.warns(od.PlacementWarning, match=r"max_pool2d: asked for mini:0, ran on numpy:0"):
            y = od.max_pool2d(x, 2)
    assert y.device == "mini:0" and isinstance(y.data, Box)
    np.testing.assert_array_equal(y.numpy(), od.max_pool2d(od.tensor(xn), 2).numpy())
    (event,) = od.placement_log()
    assert (event.op, str(event.requested), str(event.ran_on)) == ("max_pool2d", "mini:0", "numpy:0")


def test_fallback_record_is_silent_but_logged(mini):
    x = od.tensor(np.ones((1, 1, 2, 2), np.float32), device="mini:1")
    with od.device("mini:1", fallback="record"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            od.avg_pool2d(x, 2)
    assert [e.op for e in od.placement_log()] == ["avg_pool2d"]


def test_a_raising_kernel_becomes_a_kernel_error_naming_backend_and_device(clean_registry):
    od.register_plugin(make_broken("raising-kernel"))
    x = od.tensor(np.ones(2), device="broken-raising-kernel:0")
    with pytest.raises(od.KernelError, match=r"relu: the kernel of backend 'broken-raising-kernel' on "
                                             r"broken-raising-kernel:0 raised IndexError: kernel bug") as info:
        od.relu(x)
    assert isinstance(info.value.__cause__, IndexError)


def test_a_failing_fast_path_kernel_runs_once(clean_registry):
    calls = []

    def add(a, b):
        calls.append(1)
        raise MemoryError("out of device memory")

    od.register_plugin(make_plugin("oom", [Kernel("add", add)]))
    x = od.tensor(np.ones(2), device="oom:0")
    with pytest.raises(od.KernelError, match="add: the kernel of backend 'oom' on oom:0 raised MemoryError"):
        x + x
    assert len(calls) == 1


def test_failed_call_mutates_nothing():
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    x = np.ones((2, 3, 4, 4), np.float32)
    before = [a.copy() for a in (rm, rv, x)]
    with pytest.raises(od.InvalidArgumentError):
        od.batch_norm(x, rm, rv, training=True, momentum=1.5)
    y, new_rm, new_rv = od.batch_norm(x, rm, rv, training=True, momentum=0.5)
    for a, b in zip((rm, rv, x), before):
        np.testing.assert_array_equal(a, b)


def test_unknown_attribute_and_missing_required_input():
    with pytest.raises(TypeError):
        od.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)), strides=2)  # Python's own signature check
    with pytest.raises(od.InvalidArgumentError, match="conv2d: argument 'w' got None"):
        od.conv2d(np.ones((1, 1, 2, 2)), None)


def test_multi_output_op_returns_a_tuple():
    out = od.batch_norm(np.ones((2, 1, 2, 2)), np.zeros(1), np.ones(1), training=True)
    assert isinstance(out, tuple) and len(out) == 3
    assert isinstance(od.batch_norm(np.ones((2, 1, 2, 2)), np.zeros(1), np.ones(1)), od.Tensor)


def test_label_checks_copy_only_the_labels_to_the_host(clean_registry):
    import opdispatch_numpy.plugin as numpy_plugin
    from fake_backends import make_plugin
    from opdispatch.backend import DeviceInfo

    copied = []

    def to_numpy(data):
        copied.append(data.dtype.kind)
        return np.array(data, copy=True)

    od.register_plugin(make_plugin("counting", numpy_plugin.opdispatch_kernels(), devices=[DeviceInfo(index=0)],
                                   to_numpy=to_numpy, from_numpy=lambda a: np.array(a)))
    with od.device("counting:0"):
        logits = od.tensor(np.random.default_rng(0).standard_normal((4, 3)))
        labels = od.tensor(np.array([0, 2, 1, 2]))
        loss = od.softmax_cross_entropy(logits, labels)
        with pytest.raises(od.InvalidArgumentError, match="got 3 at index 1; allowed: class indices in \\[0, 2\\]"):
            od.softmax_cross_entropy(logits, np.array([0, 3, 1, 2]))
    assert copied and set(copied) == {"i"}  # the logits never left the device
    assert loss.device == od.Device("counting:0")


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("scalar", [2.5, 3, -1e30, float("inf")])
def test_tensor_with_a_python_number_matches_the_general_path(op, scalar):
    from opdispatch.tensor import run as general_run
    from opdispatch.ops import OPS

    x = od.tensor(np.array([[1.0, -2.0], [0.5, 4.0]], np.float32))
    fn = getattr(od, op)
    for a, b in ((x, scalar), (scalar, x)):
        fast = fn(a, b)
        general = general_run(OPS[op], (a, b), {})
        assert fast.dtype == general.dtype == np.float32 and fast.shape == general.shape == (2, 2)
        np.testing.assert_array_equal(fast.numpy(), general.numpy())


def test_numbers_that_do_not_take_the_fast_path_still_work_or_fail_clearly():
    x = od.tensor(np.array([1.0, 2.0], np.float32))
    assert od.add(x, True).dtype == np.float32           # bool: the general path's rules
    assert od.mul(x, 2**60).dtype == np.float32           # a huge int: the general path converts it
    with pytest.raises(od.DTypeError):
        od.add(od.tensor(np.array([1, 2])), 1.0)          # an integer tensor is refused as before
    with od.GradientTape() as tape:                       # a tape sees the op (no fast path while recording)
        tape.watch(x)
        y = od.sum(od.mul(x, 3.0))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [3.0, 3.0])
