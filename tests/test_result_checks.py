"""Every kernel result is checked against the shape and dtype inference promised before it becomes a
tensor: a kernel returning the wrong shape, dtype, None, a list or a tuple is a `KernelError` naming the
op, the backend and the device, on the fast path, the general path and in graphs."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_plugin
from opdispatch.backend import Kernel

LIES = {
    "wrong shape": (lambda x: np.maximum(x, 0).reshape(-1), "returned its output of shape (6,) and dtype float32; "
                                                              "the schema inferred shape (2, 3)"),
    "wrong dtype": (lambda x: np.maximum(x, 0).astype(np.float64), "returned its output of shape (2, 3) and dtype "
                                                                     "float64"),
    "None": (lambda x: None, "returned NoneType as its output"),
    "a list": (lambda x: np.maximum(x, 0).tolist(), "returned list as its output"),
    "a tuple": (lambda x: (np.maximum(x, 0), np.maximum(x, 0)), "returned tuple as its output"),
}


@pytest.fixture
def liar(clean_registry):
    def make(fn, op="relu"):
        od.register_plugin(make_plugin("liar", [Kernel(op, fn, dtypes=("float32",)),
                                                Kernel("sum", lambda x, axis, keepdims: None, dtypes=("float32",))],
                                       devices=[od.DeviceInfo(index=0, dtypes=("float32",))]))
        return od.tensor(np.array([[-1.0, 2.0, 3.0], [4.0, -5.0, 6.0]], np.float32), device="liar:0")
    return make


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_kernel_is_caught_on_the_fast_path(liar, lie):
    fn, message = LIES[lie]
    x = liar(fn)
    with pytest.raises(od.KernelError, match="relu: the kernel of backend 'liar' on liar:0 " + _re(message)):
        od.relu(x)


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_kernel_is_caught_on_the_general_path_and_in_graphs(liar, lie):
    fn, message = LIES[lie]
    x = liar(fn)
    with pytest.raises(od.KernelError, match=_re(message)):
        with od.GradientTape() as tape:  # a recorder: general dispatch
            tape.watch(x)
            od.relu(x)
    with pytest.raises(od.KernelError, match=_re(message) + r".*\[in graph node relu \(node %\d+, created at "
                                                            r".*test_result_checks.py:\d+\)\]"):
        od.function(lambda x: od.relu(x))(x)


def test_a_reduction_returning_nothing_is_caught(liar):
    x = liar(lambda x: np.maximum(x, 0))
    with pytest.raises(od.KernelError, match="sum: the kernel of backend 'liar' on liar:0 returned NoneType"):
        od.sum(x)


def test_honest_kernels_pass_the_check_including_numpy_scalars():
    x = od.tensor(np.ones((2, 3), np.float32))
    assert od.sum(x).shape == () and float(od.sum(x)) == 6.0  # np.sum over every axis returns a NumPy scalar
    assert od.relu(x).shape == (2, 3)


def _re(text: str) -> str:
    import re

    return re.escape(text)
