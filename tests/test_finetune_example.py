"""examples/finetune_resnet18.py: a torchvision ResNet-18, exported to ONNX in training mode and
imported with od.onnx.load, fine-tuned on the digits to 90% held-out accuracy on numpy:0 and
opencl:0 (slow: minutes; needs the torch extra and scikit-learn:
``bash scripts/test.sh -m slow tests/test_finetune_example.py``).

The fast tests check what the example needs from `OnnxModel` on small hand-built models (onnx
only): `with_params` with new shapes, `eval()` running training-mode batch norms on their running
statistics, and `apply_with_stats` returning the new statistics under od.function.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

import opdispatch as od

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install -e '.[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
F = TensorProto.FLOAT


def _bn_model(momentum: float = 0.9):
    """x (N, 2, 3, 3) -> Conv 1x1 -> training-mode BatchNormalization -> GlobalAveragePool ->
    Flatten -> Gemm (3 classes) -> y; the running statistics are not graph outputs (as torch
    exports them)."""
    rng = np.random.default_rng(3)
    inits = {"w": rng.standard_normal((2, 2, 1, 1)), "s": np.ones(2), "b": np.zeros(2), "mean": np.zeros(2),
             "var": np.ones(2), "fc.weight": rng.standard_normal((3, 2)), "fc.bias": rng.standard_normal(3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["n", "rm", "rv"],
                              training_mode=1, momentum=momentum),
             helper.make_node("GlobalAveragePool", ["n"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", F, ["N", 2, 3, 3])],
                              [helper.make_tensor_value_info("y", F, ["N", 3])],
                              initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


X = np.random.default_rng(4).standard_normal((4, 2, 3, 3)).astype(np.float32) + 2.0


def test_with_params_takes_a_classifier_of_another_shape():
    m = od.onnx.load(_bn_model())
    w, b = od.tensor(np.ones((5, 2), np.float32)), od.tensor(np.arange(5, dtype=np.float32))
    m5 = m.with_params({"fc.weight": w, "fc.bias": b})
    assert m5(X).shape == (4, 5) and m(X).shape == (4, 3)  # the original keeps its own
    assert m5.params["fc.weight"] is w and set(m5.params) == set(m.params)
    assert set(m5.buffers) == {"mean", "var"} and "fc.weight" in m5.trainable
    with pytest.raises(od.InvalidArgumentError, match="unknown parameter 'fc.w'"):
        m.with_params({"fc.w": w})
    with pytest.raises(od.InvalidArgumentError, match="float tensor"):
        m.with_params({"fc.bias": od.tensor(np.arange(5))})
    with pytest.raises(od.InvalidArgumentError, match="allowed: a tensor of float32"):
        m5.params = {**m5.params, "fc.bias": od.tensor(np.zeros(3, np.float32))}  # the setter keeps shapes


def test_eval_uses_running_statistics_and_train_updates_them():
    m = od.onnx.load(_bn_model())
    assert not m.training
    batch = m(X).numpy()  # as loaded: the node's training_mode, batch statistics, running stats written back
    mean1 = m.params["mean"].numpy()
    assert np.abs(mean1).max() > 0.01
    m.eval()
    assert not m.training
    frozen = m(X).numpy()
    np.testing.assert_array_equal(m.params["mean"].numpy(), mean1)  # inference leaves them alone
    # inference: normalised with the running statistics, a function of each example alone
    np.testing.assert_allclose(m(X[:1]).numpy(), frozen[:1], rtol=1e-5, atol=1e-6)
    assert np.abs(frozen - batch).max() > 1e-3
    m.train()
    assert m.training
    np.testing.assert_allclose(m(X).numpy(), batch, rtol=1e-5, atol=1e-5)
    assert np.abs(m.params["mean"].numpy() - mean1).max() > 0.01  # moved again


def test_eval_passes_running_outputs_through():
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             {"s": np.ones(2), "b": np.zeros(2), "mean": rng.standard_normal(2), "var": np.ones(2) * 2}.items()]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["y", "rm", "rv"],
                            training_mode=1)
    outs = [helper.make_tensor_value_info(n, F, s) for n, s in (("y", [4, 2, 3, 3]), ("rm", [2]), ("rv", [2]))]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, [4, 2, 3, 3])], outs,
                              initializer=inits)
    m = od.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])).eval()
    mean = m.params["mean"].numpy()
    y, rm, rv = m(X)
    np.testing.assert_array_equal(rm.numpy(), mean)
    np.testing.assert_array_equal(rv.numpy(), 2.0)
    c = (slice(None), None, None)
    np.testing.assert_allclose(y.numpy(), (X - mean[c]) / np.sqrt(2.0 + 1e-5), rtol=1e-5, atol=1e-5)


def test_apply_with_stats_under_od_function_matches_the_eager_write_back():
    eager = od.onnx.load(_bn_model()).train()
    traced = od.onnx.load(_bn_model()).train()
    y_eager = eager(X).numpy()
    f = od.function(traced.apply_with_stats)
    y, stats = f(traced.params, X)
    assert set(stats) == {"mean", "var"}
    np.testing.assert_allclose(y.numpy(), y_eager, rtol=1e-5, atol=1e-6)
    for k in ("mean", "var"):
        np.testing.assert_allclose(stats[k].numpy(), eager.params[k].numpy(), rtol=1e-5, atol=1e-6)
    assert traced.eval().apply_with_stats(traced.params, X)[1] == {}


def _example_module():
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import finetune_resnet18
    return finetune_resnet18


def test_the_example_uses_the_numpy_like_surface():
    """The new classifier comes from od.random (seeded: the same bits on numpy:0 and opencl:0), the
    accuracy from t.argmax / == / .sum().item(), the loss from .item(): no NumPy round trips."""
    mod = _example_module()
    with open(mod.__file__) as fh:
        source = fh.read()
    for round_trip in (".numpy()", "np.argmax", "rng.uniform", "float(loss"):
        assert round_trip not in source, round_trip
    devices = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]
    heads = []
    for dev in devices:
        m = mod.new_classifier(od.onnx.load(_bn_model(), device=dev), "fc.weight", "fc.bias", 7, od.Device(dev))
        w, b = m.params["fc.weight"], m.params["fc.bias"]
        assert w.shape == (mod.CLASSES, 2) and b.shape == (mod.CLASSES,) and w.device == od.Device(dev)
        g = od.random.Generator(7)
        bound = 1.0 / np.sqrt(2)
        np.testing.assert_array_equal(w.numpy(), g.uniform((mod.CLASSES, 2), low=-bound, high=bound).numpy())
        assert np.abs(w.numpy()).max() <= bound
        heads.append((w.numpy(), b.numpy()))
        labels = np.arange(4) % mod.CLASSES
        want = float(np.mean(np.argmax(m.eval()(X).numpy(), axis=1) == labels))
        assert mod.evaluate(m, X, labels, m, batch=3) == pytest.approx(want)
    for w, b in heads[1:]:  # the same seed, the same classifier on every device
        np.testing.assert_array_equal(w, heads[0][0])
        np.testing.assert_array_equal(b, heads[0][1])


# -- the example itself (slow) -----------------------------------------------------------------

def _missing() -> list[str]:
    return [m for m in ("torch", "torchvision", "sklearn") if importlib.util.find_spec(m) is None]


def _devices() -> list[str]:
    names = [str(d) for d in od.devices()]
    return [pytest.param(d, marks=pytest.mark.skipif(d not in names, reason=f"{d} is not available here"))
            for d in ("numpy:0", "opencl:0")]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"the example needs {', '.join(missing)} (pip install -e '.[torch,examples]')")
    sys.path.insert(0, EXAMPLES)
    import finetune_resnet18
    path = str(tmp_path_factory.mktemp("finetune") / "resnet18.onnx")
    finetune_resnet18.export_resnet18(path)
    return finetune_resnet18, path


@pytest.mark.slow
@pytest.mark.parametrize("device", _devices())
def test_finetune_reaches_90_percent(example, device, capsys):
    mod, path = example
    acc = mod.main(["--device", device, "--model", path, "--target", "0.9"])
    assert acc >= 0.9
    out = capsys.readouterr()
    assert "epoch   3: train loss" in out.out and f"on {device}" in out.out
    assert "running statistics updated" in out.err


@pytest.mark.slow
def test_graph_step_trains_like_the_eager_one(example, capsys):
    mod, path = example
    eager = mod.main(["--device", "numpy:0", "--model", path, "--epochs", "1"])
    graph = mod.main(["--device", "numpy:0", "--model", path, "--epochs", "1", "--graph"])
    assert graph == pytest.approx(eager, abs=0.02) and graph > 0.5
    assert "(od.function)" in capsys.readouterr().err
