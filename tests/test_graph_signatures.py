"""od.function signatures: aliasing, Python value types, containers, methods, array arguments, devices."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import opdispatch as od


def _grad_of_product(a, b):
    with od.GradientTape() as tape:
        tape.watch(a)
        y = od.sum(a * b)
    return tape.gradient(y, a)


def test_the_same_tensor_passed_twice_is_one_graph_input():
    x, y = od.tensor(np.array([1.0, 2.0, 3.0])), od.tensor(np.array([5.0, 6.0, 7.0]))
    f = od.function(_grad_of_product)
    np.testing.assert_array_equal(f(x, x).numpy(), [2.0, 4.0, 6.0])  # d/da sum(a * a)
    np.testing.assert_array_equal(f(x, y).numpy(), y.numpy())        # a different signature
    np.testing.assert_array_equal(od.function(lambda p: _grad_of_product(*p))([x, x]).numpy(), [2.0, 4.0, 6.0])
    assert len(f.graph(x, x).inputs) == 1 and len(f.graph(x, y).inputs) == 2


def test_python_values_of_other_types_are_other_signatures():
    x = od.tensor(np.ones(3))
    g = od.function(lambda x, k: od.tensor(k))
    assert [g(x, v).dtype for v in (1, True, 1.0)] == [np.int64, np.bool_, np.float32]
    x32 = od.tensor(np.ones(3, np.float32))
    f = od.function(lambda a, s: a + s)
    assert f(x32, 2.0).dtype == np.float32
    with pytest.raises(od.DTypeError):
        f(x32, np.float64(2.0))  # as eagerly: a NumPy float64 scalar is not a weak Python scalar


def test_namedtuples_come_back_as_namedtuples():
    P = collections.namedtuple("P", "a b")
    x = od.tensor(np.ones(3))
    assert od.function(lambda p: p.a + p.b)(P(x, x)).numpy().tolist() == [2.0, 2.0, 2.0]
    out = od.function(lambda a: P(a, -a))(x)
    assert isinstance(out, P) and out.b.numpy().tolist() == [-1.0, -1.0, -1.0]


def test_a_method_can_be_an_od_function():
    class Model:
        def __init__(self):
            self.w = od.tensor(np.full(3, 2.0))

        @od.function
        def forward(self, x):
            return x * self.w

    m = Model()
    x = od.tensor(np.ones(3))
    assert m.forward(x).numpy().tolist() == [2.0, 2.0, 2.0]
    assert m.forward.graph(x).ops() == ["mul"]


def test_array_arguments_join_the_device_of_the_tensor_arguments(clean_registry):
    from fake_backends import make_plugin
    import opdispatch_numpy.plugin as numpy_plugin
    from opdispatch.backend import DeviceInfo

    od.register_plugin(make_plugin("other", numpy_plugin.opdispatch_kernels(), devices=[DeviceInfo(index=0)],
                                   to_numpy=lambda d: np.array(d, copy=True), from_numpy=lambda a: np.array(a)))
    logits = od.tensor(np.random.default_rng(0).standard_normal((2, 3)), device="other:0")
    f = lambda lg, y: od.softmax_cross_entropy(lg, y)  # noqa: E731
    eager = f(logits, np.array([0, 2]))
    traced = od.function(f)(logits, np.array([0, 2]))
    assert traced.device == eager.device == od.Device("other:0")
    assert float(traced) == pytest.approx(float(eager))


def test_constants_stay_on_the_device_they_were_made_on(clean_registry):
    from fake_backends import make_plugin
    import opdispatch_numpy.plugin as numpy_plugin
    from opdispatch.backend import DeviceInfo

    od.register_plugin(make_plugin("other", numpy_plugin.opdispatch_kernels(), devices=[DeviceInfo(index=0)],
                                   to_numpy=lambda d: np.array(d, copy=True), from_numpy=lambda a: np.array(a)))
    x = od.tensor(np.ones(2))
    f = lambda a: od.exp(od.tensor([1.0, 2.0], device="other:0"))  # noqa: E731
    g = lambda a: od.tensor([1.0, 2.0], device="other:0")  # noqa: E731
    for fn in (f, g):
        assert od.function(fn)(x).device == fn(x).device == od.Device("other:0")
    assert od.function(f, passes={"constant_fold": False})(x).device == od.Device("other:0")


def test_unsigned_labels_survive_save_and_load(tmp_path):
    f = od.function(lambda lg, y: od.softmax_cross_entropy(lg, y))
    logits, labels = od.tensor(np.random.default_rng(1).standard_normal((2, 3))), od.tensor(np.array([0, 2], np.uint32))
    f.graph(logits, labels).save(str(tmp_path / "u"))
    loaded = od.load_graph(str(tmp_path / "u"))
    assert float(loaded(logits, labels)) == pytest.approx(float(f(logits, labels)))


def test_a_whole_training_step_with_its_update_is_one_graph():
    """Forward, backward and an SGD-momentum update written with ops: one graph, same numbers as eager."""
    rng = np.random.default_rng(3)
    x = od.tensor(rng.standard_normal((8, 1, 6, 6)))
    labels = od.tensor(rng.integers(0, 3, 8))

    def step(params, velocity, x, labels, lr=0.1, momentum=0.9):
        w, wd = params
        with od.GradientTape() as tape:
            tape.watch(params)
            h = od.max_pool2d(od.relu(od.conv2d(x, w, padding=1)), 2)
            loss = od.softmax_cross_entropy(od.matmul(od.flatten(h), wd), labels)
        grads = tape.gradient(loss, params)
        velocity = [v * momentum + g for v, g in zip(velocity, grads)]
        return loss, [p - v * lr for p, v in zip(params, velocity)], velocity

    params = [od.tensor(rng.standard_normal((4, 1, 3, 3)) * 0.3), od.tensor(rng.standard_normal((36, 3)) * 0.1)]
    velocity = [od.tensor(np.zeros(p.shape)) for p in params]
    graph_step = od.function(step)
    eager_state, graph_state = (params, velocity), (params, velocity)
    for _ in range(3):
        loss_e, *eager_state = step(*eager_state, x, labels)
        loss_g, *graph_state = graph_step(*graph_state, x, labels)
        assert float(loss_g) == pytest.approx(float(loss_e), rel=1e-12)
    for a, b in zip(eager_state[0], graph_state[0]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)
    ops = graph_step.graph(*graph_state, x, labels).ops()
    assert "conv2d_backward_weight" in ops and "sub" in ops  # backward and update in the same graph


def test_a_function_that_keeps_retracing_warns_once_with_the_reason():
    from opdispatch.graph.function import RETRACE_WARNING, GraphRetraceWarning

    f = od.function(lambda x, lr: x * lr)
    x = od.tensor(np.ones(2))
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(RETRACE_WARNING + 3):
            f(x, 0.1 * (i + 1))  # a learning rate as a Python float: a new signature every call
    retraces = [w for w in caught if issubclass(w.category, GraphRetraceWarning)]
    assert len(retraces) == 1 and "pass values that vary as tensors" in str(retraces[0].message)
    assert retraces[0].filename == __file__  # points at the caller's line
