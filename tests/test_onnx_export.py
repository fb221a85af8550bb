"""od.onnx.export: traced functions and graphs written as ONNX, checked by onnx.checker and run by
ONNX Runtime against opdispatch's own result."""

from __future__ import annotations

import os

import numpy as np
import pytest

import opdispatch as od
from opdispatch.api import __all__ as PUBLIC_OPS
from opdispatch.api import op_function

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'opdispatch[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'opdispatch[test]')")

from opdispatch.onnx.export import EXPORTERS, OnnxExportError, export  # noqa: E402

RNG = np.random.default_rng(7)


def arr(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def run_ort(model, feeds: dict) -> list:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(fn, *args, rtol=1e-4, atol=1e-5):
    model = export(fn, args)
    got = run_ort(model, {f"input_{i}": np.asarray(a) for i, a in enumerate(args)})
    want = fn(*[od.tensor(a) for a in args])
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = w.numpy()
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return model


CASES = {
    "conv": (lambda x, w, b: od.conv2d(x, w, b, stride=2, padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2),
             (arr(2, 4, 11, 10), arr(6, 2, 3, 3), arr(6))),
    "conv_same_groups": (lambda x, w: od.conv2d(x, w, padding="SAME", groups=2), (arr(1, 4, 7, 8), arr(4, 2, 3, 2))),
    "conv_bias_relu": (lambda x, w, b: op_function("conv2d_bias_relu")(x, w, b, stride=1, padding=1),
                       (arr(2, 3, 6, 6), arr(5, 3, 3, 3), arr(5))),
    "conv_bias_clip": (lambda x, w, b: (op_function("conv2d_bias_clip")(x, w, b, padding=1, min=0.0, max=0.5),
                                        op_function("conv2d_bias_clip")(x, w, None, min=None, max=0.25)),
                       (arr(2, 3, 6, 6), arr(5, 3, 3, 3), arr(5))),
    "conv_backward_input": (lambda dy, w: op_function("conv2d_backward_input")(
        dy, w, input_shape=(2, 3, 9, 8), stride=(2, 2), padding=((1, 1), (0, 1)), dilation=(1, 1), groups=1),
        (arr(2, 4, 5, 4), arr(4, 3, 3, 3))),
    "max_pool": (lambda x: od.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), (arr(2, 3, 10, 9),)),
    "max_pool_dilated": (lambda x: od.max_pool2d(x, 2, stride=1, dilation=2), (arr(1, 2, 7, 7),)),
    "avg_pool": (lambda x: od.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False), (arr(2, 3, 9, 9),)),
    "avg_pool_incl": (lambda x: od.avg_pool2d(x, (2, 3), stride=(1, 2), padding=(1, 1)), (arr(1, 2, 6, 7),)),
    "batch_norm": (lambda x, m, v, w, b: od.batch_norm(x, m, v, w, b, eps=1e-3),
                   (arr(2, 3, 4, 4), arr(3), arr(3, low=0.5, high=2.0), arr(3), arr(3))),
    "batch_norm_train": (lambda x, m, v: od.batch_norm(x, m, v, training=True, momentum=0.2),
                         (arr(4, 3, 2, 5), arr(3), arr(3, low=0.5, high=2.0))),
    "matmul": (lambda a, b: od.matmul(a, b), (arr(2, 3, 4), arr(4, 5))),
    "elementwise": (lambda a, b: (od.relu(a) + od.sigmoid(b) - od.tanh(a) * od.exp(b) / (od.sqrt(od.exp(a)) + 1.0),
                                  -od.log(od.exp(b)), od.leaky_relu(a, 0.2), od.silu(b)),
                    (arr(3, 4), arr(4))),
    "zoo_elementwise": (lambda a, b: (od.clip(a, -0.5, 0.25), od.clip(a, min=0.1), od.clip(a, max=0.2),
                                      od.hardsigmoid(a * 4.0), od.hardswish(a * 4.0), od.erf(a), od.gelu(b),
                                      od.gelu(a, approximate="tanh"), od.abs(a), od.pow(od.abs(a) + 0.5, b),
                                      od.maximum(a, b), od.minimum(a, b)),
                        (arr(3, 4), arr(4))),
    "conv_transpose": (lambda x, w, b: od.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
                       (arr(2, 4, 5, 6), arr(4, 3, 3, 3), arr(6))),
    "adaptive_pool": (lambda x: (od.adaptive_avg_pool2d(x, (3, 2)), od.adaptive_avg_pool2d(x, 4),
                                 od.adaptive_avg_pool2d(x, 1)), (arr(2, 3, 9, 8),)),
    "compare": (lambda a, b: (od.equal(a, b), od.not_equal(a, 0.5), od.less(a, b), od.less_equal(a, b),
                              od.greater(a, b), od.greater_equal(a, b), od.where(od.greater(a, b), a, b),
                              od.argmax(a, axis=1), od.argmin(a, axis=0, keepdims=True), od.argmax(a),
                              od.argmin(a, keepdims=True), od.min(a, axis=1), od.min(a)),
                (np.round(arr(3, 4) * 2) / 2, np.round(arr(4) * 2) / 2)),
    "int_compare": (lambda a, b: (od.equal(a, b), od.where(od.less(a, b), a, b), od.argmax(a, axis=0)),
                    (np.array([[1, 5, 3], [4, 2, 6]], np.int64), np.array([4, 5, 1], np.int64))),
    "layer_norm": (lambda x, w, b: (od.layer_norm(x, (3, 4), w, b), od.layer_norm(x, (4,), eps=1e-3)),
                   (arr(2, 3, 4), arr(3, 4), arr(3, 4))),
    "lrn": (lambda x: (od.local_response_norm(x, 3), od.local_response_norm(x, 4, alpha=0.1, beta=0.5, k=2.0),
                       od.local_response_norm(x, 1)), (arr(2, 7, 3, 3),)),
    "split_squeeze": (lambda x: od.split(x, [1, 3], axis=1) + od.split(x, 2, axis=2)
                      + (od.squeeze(od.unsqueeze(x, (0, -1))), od.unsqueeze(x, 1)),
                      (arr(2, 4, 6),)),
    "indexing": (lambda x: (x[1], x[:, ::-2], x[..., None, 0], x[[0, 2, 2]], x[:, np.array([1, 0])]), (arr(3, 4),)),
    "cast": (lambda x: (od.cast(x, "float64"), od.cast(x * 4.0, "int64"), od.cast(x, "bool"), x.astype("float64") * 2.0),
             (arr(3, 5),)),
    "dropout_fixed_seed": (lambda x: (od.dropout(x, 0.3, seed=11), od.dropout(x, 0.5, training=False)),
                           (arr(5, 17),)),
    "reduce": (lambda x: (od.sum(x, axis=1), od.mean(x, axis=(0, 2), keepdims=True), od.max(x), od.sum(x)),
               (arr(2, 3, 4),)),
    "layout": (lambda x: (od.reshape(x, (6, -1)), od.transpose(x, (2, 0, 1)), od.flatten(x),
                          od.slice(x, [1, -1], [None, 0], axes=[0, 2], steps=[1, -2]),
                          od.concat([x, x * 2.0], axis=1), od.pad(x, ((1, 2), (0, 1)), value=0.25),
                          od.pad(x, ((1, 1),), mode="reflect"), od.pad(x, ((2, 0), (1, 1)), mode="edge")),
               (arr(2, 3, 4),)),
    "softmax": (lambda x: (od.softmax(x, axis=1), od.log_softmax(x)), (arr(2, 5, 3),)),
    "cross_entropy": (lambda z, y: od.softmax_cross_entropy(z, y), (arr(4, 5), np.array([0, 4, 2, 1]))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_matches_onnx_runtime(name: str) -> None:
    fn, args = CASES[name]
    check(fn, *args)


def test_every_public_op_with_an_exporter_is_covered_by_a_case() -> None:
    """Each op the exporter writes appears in some case above, as traced (decomposed ops aside)."""
    seen: set[str] = set()
    for fn, args in CASES.values():
        g = od.function(fn).graph(*[od.tensor(a) for a in args], optimized=False)
        seen.update(n.op for n in g.nodes)
        seen.update(n.decomposed_from for n in g.nodes if n.decomposed_from)
    # the rest are checked as one-node graphs (test_ops_as_single_nodes)
    assert sorted(set(EXPORTERS) - seen - {"broadcast_to", "relu_backward", "scatter_add"}) == []


@pytest.mark.parametrize("op, args, attrs", [
    ("conv_transpose2d", (arr(2, 4, 5, 6), arr(4, 3, 3, 3), arr(6)),
     {"stride": 2, "padding": ((1, 0), (1, 2)), "output_padding": 1, "groups": 2}),
    ("adaptive_avg_pool2d", (arr(2, 3, 9, 8),), {"output_size": (4, 3)}),
    ("adaptive_avg_pool2d", (arr(2, 3, 9, 8),), {"output_size": (3, 4)}),
    ("adaptive_avg_pool2d", (arr(1, 2, 5, 7),), {"output_size": 1}),
    ("layer_norm", (arr(2, 3, 4), arr(4), arr(4)), {"normalized_shape": (4,)}),
    ("local_response_norm", (arr(2, 6, 3, 3),), {"size": 2}),
    ("squeeze", (arr(2, 1, 3, 1),), {}),
    ("gather", (arr(4, 5, 3), np.array([[0, -1], [2, 2]], np.int64)), {"axis": 1}),
    ("scatter_add", (arr(4, 2, 2, 3), np.array([[0, -1], [2, 2]], np.int64)), {"axis": 1, "size": 5}),
    ("unsqueeze", (arr(2, 3),), {"axis": (0, -1)}),
])
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_ops_as_single_nodes(op, args, attrs, opset) -> None:
    if op == "scatter_add" and opset < 16:
        with pytest.raises(OnnxExportError, match="opset 16"):
            _one_node(op, args, attrs, opset)
        return
    _one_node(op, args, attrs, opset)


def _one_node(op, args, attrs, opset) -> None:
    """Ops that trace as their decomposition (no kernel) still export directly, as a provider's
    kernel makes them appear as nodes: built here as one-node graphs."""
    from opdispatch.graph.ir import GraphIR, Node, ValueInfo
    from opdispatch.ops import OPS
    from opdispatch.schema import TensorMeta
    schema = OPS[op]
    metas = [TensorMeta(a.shape, a.dtype) for a in args]
    outs, kattrs = schema.infer(op, metas + [None] * (len(schema.inputs) - len(args)), schema.normalize(attrs))
    dev = od.Device("numpy:0")
    n = len(args)
    values = {i: ValueInfo(a.shape, a.dtype, dev) for i, a in enumerate(args)}
    values[n] = ValueInfo(outs[0].shape, outs[0].dtype, dev)
    inputs = tuple(range(n)) + (None,) * (len(schema.inputs) - n)
    graph = GraphIR("one", tuple(range(n)), (n,), (Node(op, inputs, (n,), kattrs, dev),), values)
    (got,) = run_ort(export(graph, opset=opset), {f"input_{i}": a for i, a in enumerate(args)})
    np.testing.assert_allclose(got, op_function(op)(*args, **attrs).numpy(), rtol=1e-5, atol=1e-5)


def test_every_public_op_has_an_onnx_form() -> None:
    """A new public op needs an exporter (or is listed here with the reason it has none)."""
    from opdispatch.ops import OPS
    no_form: dict[str, str] = {}
    missing = [op for op in PUBLIC_OPS if op in OPS and op not in EXPORTERS and op not in no_form]
    assert missing == []


def test_cnn_file_round_trip(tmp_path) -> None:
    x, w1, w2 = arr(2, 1, 12, 12), arr(4, 1, 3, 3), arr(8 * 6, 10)

    def net(x):
        h = od.max_pool2d(od.relu(od.conv2d(x, w1, padding=1)), 2)
        h = od.concat([h, -h], axis=1)
        return od.log_softmax(od.matmul(od.flatten(h), od.tensor(np.resize(w2, (8 * 36, 10)))))

    path = tmp_path / "net.onnx"
    model = export(od.function(net), (x,), path, input_names=["image"], output_names=["logp"])
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert [i.name for i in loaded.graph.input] == ["image"] and loaded.opset_import[0].version == 17
    assert len(loaded.graph.initializer) >= 2  # captured weights became initializers
    (got,) = run_ort(model, {"image": x})
    np.testing.assert_allclose(got, net(od.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_export_a_graph_and_opsets() -> None:
    x = arr(2, 3, 4)
    graph = od.function(lambda t: od.mean(od.relu(t), axis=1)).graph(od.tensor(x))
    for opset in (13, 17, 18, 21):
        model = export(graph, opset=opset)
        (got,) = run_ort(model, {"input_0": x})
        np.testing.assert_allclose(got, np.maximum(x, 0).mean(axis=1), rtol=1e-6)


def test_gradient_ops_are_refused_with_every_op_listed(tmp_path) -> None:
    x, w = arr(1, 2, 5, 5), arr(3, 2, 3, 3)

    def step(x, w):
        with od.GradientTape() as tape:
            tape.watch(w)
            loss = od.sum(od.max_pool2d(od.conv2d(x, w), 2))
        return tape.gradient(loss, w)

    path = tmp_path / "grad.onnx"
    with pytest.raises(OnnxExportError) as err:
        export(step, (x, w), path)
    msg = str(err.value)
    assert "conv2d_backward_weight" in msg and "max_pool2d_backward" in msg and "test_onnx_export.py" in msg
    assert not os.path.exists(path)


def test_dropout_with_a_per_run_seed_is_refused() -> None:
    with pytest.raises(OnnxExportError, match="seed drawn per run"):
        export(lambda t: od.dropout(t, 0.5), (arr(3, 4),))


@pytest.mark.parametrize("kwargs, word", [({"opset": 12}, "opset"), ({"opset": "17"}, "opset"),
                                          ({"input_names": ["a", "a"]}, "input_names"),
                                          ({"output_names": []}, "output_names")])
def test_bad_arguments(kwargs, word) -> None:
    with pytest.raises(OnnxExportError, match=word):
        export(lambda t: od.relu(t), (arr(3),), **kwargs)


def test_not_a_function() -> None:
    with pytest.raises(OnnxExportError, match="fn_or_graph"):
        export(42, ())
