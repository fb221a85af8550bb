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


def _provider(name, kernels, priority=100):
    class Provider:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return od.ProviderInfo(name=name, priority=priority)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return kernels

    return Provider()


class _Lookalike:
    """Not a NumPy array, but with the shape and dtype of one."""

    def __init__(self, array):
        self.shape, self.dtype = array.shape, array.dtype


def test_a_result_of_another_class_than_the_backends_arrays_is_refused(clean_registry):
    """numpy:0 declares its array types: an object with the right shape and dtype is still refused."""
    od.register_plugin(_provider("lookalike", [Kernel("relu", lambda x: _Lookalike(x), backend="numpy"),
                                               Kernel("matmul", lambda a, b: _Lookalike(a @ b), backend="numpy")]))
    x = od.tensor(np.ones((2, 2), np.float32))
    with pytest.raises(od.KernelError, match="relu: the kernel of provider 'lookalike' on numpy:0 returned "
                                             "_Lookalike as its output; allowed: a numpy array"):
        od.relu(x)
    with pytest.raises(od.KernelError, match="matmul: the kernel of provider 'lookalike' on numpy:0 returned "
                                             "_Lookalike"):
        od.matmul(x, x)
    with pytest.raises(od.KernelError, match=r"returned _Lookalike.*\[in graph node relu"):
        od.function(lambda x: od.relu(x))(x)


def test_plain_results_are_checked_without_asking_the_backend(clean_registry, monkeypatch):
    from opdispatch.runtime import DeviceRuntime

    asked = []
    describe = DeviceRuntime.describe
    monkeypatch.setattr(DeviceRuntime, "describe", lambda self, data: asked.append(data) or describe(self, data))
    x = od.tensor(np.ones((2, 3), np.float32))
    od.relu(x), od.matmul(x, od.transpose(x, (1, 0))), od.function(lambda x: od.relu(x) + 1.0)(x)
    assert asked == []
    od.register_plugin(_provider("wrong", [Kernel("relu", lambda x: x[:1], backend="numpy")]))
    with pytest.raises(od.KernelError):
        od.relu(x)
    assert len(asked) == 1  # only the result that is not plainly right is described


def test_the_fast_path_error_names_the_provider_whose_kernel_ran(clean_registry):
    """Two providers of neg: the first handles float64 only; the float32 call ran the second's kernel."""
    od.register_plugin(_provider("only64", [Kernel("neg", np.negative, backend="numpy", dtypes=("float64",))], 200))
    od.register_plugin(_provider("liar32", [Kernel("neg", lambda x: x[:1], backend="numpy", dtypes=("float32",))]))
    with pytest.raises(od.KernelError, match="neg: the kernel of provider 'liar32' on numpy:0 returned its output "
                                             "of shape"):
        od.neg(od.tensor(np.ones((2, 3), np.float32)))
    assert od.neg(od.tensor(np.ones(2))).numpy().tolist() == [-1.0, -1.0]


def test_a_multi_output_kernel_returning_a_list_says_what_is_allowed(clean_registry):
    """batch_norm in training has three outputs: a list of three is not the tuple kernels return."""
    from opdispatch.reference.norm import batch_norm

    od.register_plugin(_provider("lister", [Kernel("batch_norm", lambda *a, **k: list(batch_norm(*a, **k)),
                                                   backend="numpy")]))
    x, c = od.tensor(np.random.rand(2, 3, 4, 4).astype(np.float32)), od.tensor(np.ones(3, np.float32))
    with pytest.raises(od.KernelError, match="batch_norm: the kernel of provider 'lister' on numpy:0 returned list; "
                                             "allowed: a tuple of 3 numpy arrays, one per output"):
        od.batch_norm(x, c, c, training=True)


def _exits(*args, **kwargs):
    raise SystemExit(3)


def _interrupts(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_kernel_raising_systemexit_is_a_kernel_error_everywhere(clean_registry):
    """A plugin's SystemExit (or any BaseException) does not end the user's program; Ctrl-C still does."""
    od.register_plugin(_provider("exiting", [Kernel("relu", _exits, backend="numpy"),
                                             Kernel("matmul", _exits, backend="numpy"),
                                             Kernel("tanh", np.tanh, backend="numpy", supports=_exits)]))
    x = od.tensor(np.ones((2, 2), np.float32))
    expected = "relu: the kernel of provider 'exiting' on numpy:0 raised SystemExit: 3"
    with pytest.raises(od.KernelError, match=expected) as fast:
        od.relu(x)
    assert isinstance(fast.value.__cause__, SystemExit)
    with pytest.raises(od.KernelError, match="matmul: the kernel of provider 'exiting' on numpy:0 raised SystemExit"):
        od.matmul(x, x)
    with pytest.raises(od.KernelError, match=r"raised SystemExit: 3.*\[in graph node relu"):
        od.function(lambda x: od.relu(x))(x)
    with pytest.raises(od.KernelError, match="tanh: supports.. of the tanh kernel of 'exiting' raised SystemExit"):
        od.tanh(x)


def test_ctrl_c_in_a_kernel_reaches_the_user_as_it_is(clean_registry):
    od.register_plugin(_provider("interrupting", [Kernel("relu", _interrupts, backend="numpy"),
                                                  Kernel("matmul", _interrupts, backend="numpy")]))
    x = od.tensor(np.ones((2, 2), np.float32))
    for call in (lambda: od.relu(x), lambda: od.matmul(x, x), lambda: od.function(lambda x: od.relu(x))(x)):
        with pytest.raises(KeyboardInterrupt):
            call()


def test_an_opdispatch_error_from_a_kernel_is_raised_without_a_cause_loop(clean_registry):
    def refuse(x):
        raise od.UnsupportedError("relu: not today")

    od.register_plugin(_provider("refusing", [Kernel("relu", refuse, backend="numpy"),
                                              Kernel("matmul", lambda a, b: refuse(a), backend="numpy")]))
    x = od.tensor(np.ones((2, 2), np.float32))
    for call in (lambda: od.relu(x), lambda: od.matmul(x, x), lambda: od.function(lambda x: od.relu(x))(x)):
        with pytest.raises(od.UnsupportedError, match="relu: not today") as info:
            call()
        assert info.value.__cause__ is not info.value
