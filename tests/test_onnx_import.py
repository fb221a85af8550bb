"""od.onnx.load: errors, opset variants (built with onnx.helper), params and training, devices, graph mode."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od

onnx = pytest.importorskip("onnx", reason="od.onnx needs the optional onnx package (extra 'onnx')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if any(not o.type.tensor_type.HasField("shape") for o in outputs):  # the checker wants output shapes
        model = onnx.shape_inference.infer_shapes(model)
    return model


def _vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _conv_net(opset=17, rng=None):
    """x (1, 2, 6, 6) -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> y (1, 3)."""
    rng = rng or np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    fw = rng.standard_normal((3, 4)).astype(np.float32)
    fb = rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    m = _model(nodes, [_vi("x", [1, 2, 6, 6])], [_vi("y", [1, 3])],
               [_init("w", w), _init("b", b), _init("fw", fw), _init("fb", fb)], opset=opset)
    return m, (w, b, fw, fb)


def _np_conv_net(x, w, b, fw, fb):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((1, 4, 6, 6))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + 6, j:j + 6], w[:, :, i, j])
    out = np.maximum(out + b[None, :, None, None], 0)
    return out.mean(axis=(2, 3)) @ fw.T + fb


X = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)


def test_load_run_matches_numpy():
    proto, weights = _conv_net()
    m = od.onnx.load(proto)
    y = m(X)
    assert isinstance(y, od.Tensor) and y.shape == (1, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), _np_conv_net(X.astype(np.float64), *weights), rtol=1e-4, atol=1e-5)
    assert set(m.params) == {"w", "b", "fw", "fb"}
    assert m.inputs == ("x",) and m.outputs == ("y",)
    np.testing.assert_array_equal(m(x=X).numpy(), y.numpy())  # by name


def test_load_from_path_and_bad_files(tmp_path):
    proto, _ = _conv_net()
    path = tmp_path / "net.onnx"
    onnx.save(proto, str(path))
    np.testing.assert_array_equal(od.onnx.load(str(path))(X).numpy(), od.onnx.load(proto)(X).numpy())
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\xfe not a protobuf \x00\x01" * 10)
    for bad in (junk, tmp_path / "missing.onnx", tmp_path):
        with pytest.raises(od.onnx.OnnxImportError) as info:
            od.onnx.load(str(bad))
        assert str(bad) in str(info.value)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(od.onnx.OnnxImportError, match="no graph"):
        od.onnx.load(str(empty))
    with pytest.raises(od.ArgumentTypeError):
        od.onnx.load(42)
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(proto.SerializeToString()[:-7])
    with pytest.raises(od.onnx.OnnxImportError):
        od.onnx.load(str(truncated))


def test_every_unsupported_op_listed_once():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("NonMaxSuppression", ["a"], ["b"], name="nms1"),
             helper.make_node("TopK", ["b"], ["c", "ci"], name="topk"),
             helper.make_node("NonMaxSuppression", ["c"], ["d"], name="nms2"),
             helper.make_node("FancyOp", ["d"], ["y"], name="custom", domain="com.example")]
    proto = _model(nodes, [_vi("x", [2])], [_vi("y", [2])])
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(od.onnx.OnnxImportError) as info:
        od.onnx.load(proto, check=False)
    msg = str(info.value)
    for word in ("NonMaxSuppression", "'nms1'", "'nms2'", "TopK", "'topk'", "com.example:FancyOp", "'custom'"):
        assert word in msg
    assert "Relu" not in msg and "3 ONNX op type(s)" in msg


def test_opset_out_of_range():
    proto = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])], opset=6)
    with pytest.raises(od.onnx.OnnxImportError, match="opset 6"):
        od.onnx.load(proto)


def test_external_data_only_beside_the_model(tmp_path):
    proto, _ = _conv_net()
    path = tmp_path / "ext.onnx"
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)  # save_model converts the proto it is given
    onnx.save_model(copy, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    np.testing.assert_allclose(od.onnx.load(str(path))(X).numpy(), od.onnx.load(proto)(X).numpy(), rtol=1e-6)
    loaded = onnx.load(str(path), load_external_data=False)
    with pytest.raises(od.onnx.OnnxImportError, match="pass the model's path"):
        od.onnx.load(loaded)
    for entry in loaded.graph.initializer:
        for kv in entry.external_data:
            if kv.key == "location":
                kv.value = "../outside.data"
    escaping = tmp_path / "escape.onnx"
    onnx.save(loaded, str(escaping))
    with pytest.raises(od.onnx.OnnxImportError, match="not a file beside the model"):
        od.onnx.load(str(escaping))


def test_import_without_onnx_package():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import opdispatch as od\n"
            "try:\n    od.onnx.load('x.onnx')\n"
            "except od.onnx.OnnxNotInstalledError as e:\n    assert isinstance(e, od.OpDispatchError); print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install" in out and "opdispatch[onnx]" in out


# -- opset variants ---------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [7, 10, 13, 18])
def test_slice_forms(opset):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    if opset < 10:
        node = helper.make_node("Slice", ["x"], ["y"], starts=[0, 1], ends=[1, 100], axes=[0, 2])
        inits = []
    else:
        node = helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])
        inits = [_init("s", np.array([0, -1], np.int64)), _init("e", np.array([1, -100], np.int64)),
                 _init("a", np.array([0, 2], np.int64)), _init("st", np.array([1, -2], np.int64))]
    y = od.onnx.load(_model([node], [_vi("x", [2, 3, 4])], [_vi("y", None)], inits, opset))(x).numpy()
    np.testing.assert_array_equal(y, x[0:1, :, 1:] if opset < 10 else x[0:1, :, -1::-2])


@pytest.mark.parametrize("opset", [7, 13])
def test_softmax_axis_semantics(opset):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    y = od.onnx.load(_model([node], [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], opset=opset))(x).numpy()
    if opset < 13:  # coerced to 2-D at axis 1: normalised over 3 * 4 values per row
        flat = x.reshape(2, 12)
        want = (np.exp(flat) / np.exp(flat).sum(1, keepdims=True)).reshape(2, 3, 4)
    else:
        want = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(y, want, rtol=1e-5)


def _reduce_forms(opset):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    if opset < 13:
        nodes = [helper.make_node("ReduceSum", ["x"], ["r"], axes=[1], keepdims=0),
                 helper.make_node("Unsqueeze", ["r"], ["u"], axes=[0, 2]),
                 helper.make_node("Squeeze", ["u"], ["y"], axes=[0])]
        inits = []
    else:
        nodes = [helper.make_node("ReduceSum", ["x", "ax"], ["r"], keepdims=0),
                 helper.make_node("Unsqueeze", ["r", "ua"], ["u"]),
                 helper.make_node("Squeeze", ["u", "sa"], ["y"])]
        inits = [_init("ax", np.array([1], np.int64)), _init("ua", np.array([0, 2], np.int64)),
                 _init("sa", np.array([0], np.int64))]
    y = od.onnx.load(_model(nodes, [_vi("x", [2, 3])], [_vi("y", None)], inits, opset))(x).numpy()
    np.testing.assert_allclose(y, x.sum(1).reshape(2, 1), rtol=1e-6)


@pytest.mark.parametrize("opset", [7, 12, 13, 18])
def test_reduce_unsqueeze_squeeze_forms(opset):
    _reduce_forms(opset)


@pytest.mark.parametrize("opset", [7, 11])
def test_reshape_and_gemm_attrs(opset):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 2)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal((4,)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["g"], transA=1, transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Reshape", ["g", "shape"], ["y"])]
    inits = [_init("b", b), _init("c", c), _init("shape", np.array([0, 2, -1], np.int64))]
    y = od.onnx.load(_model(nodes, [_vi("a", [3, 2])], [_vi("y", None)], inits, opset))(a).numpy()
    want = (0.5 * a.T @ b.T + 2.0 * c).reshape(2, 2, 2)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(auto_pad):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    w = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    y = od.onnx.load(_model([node], [_vi("x", [1, 1, 5, 5])], [_vi("y", None)], [_init("w", w)]))(x).numpy()
    # SAME: out 3, total pad 1: UPPER pads at the end, LOWER at the start
    pad = {"SAME_UPPER": (0, 1), "SAME_LOWER": (1, 0), "VALID": (0, 0)}[auto_pad]
    xp = np.pad(x[0, 0].astype(np.float64), (pad, pad))
    n = (xp.shape[0] - 2) // 2 + 1
    want = np.array([[np.sum(xp[2 * i:2 * i + 2, 2 * j:2 * j + 2] * w[0, 0]) for j in range(n)] for i in range(n)])
    np.testing.assert_allclose(y[0, 0], want, rtol=1e-5, atol=1e-6)


def test_pool_options():
    x = np.random.default_rng(4).standard_normal((1, 1, 5, 5)).astype(np.float32)
    nodes = [helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                              ceil_mode=1, count_include_pad=0),
             helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[2, 2], dilations=[2, 2]),
             helper.make_node("GlobalMaxPool", ["x"], ["g"])]
    proto = _model(nodes, [_vi("x", [1, 1, 5, 5])], [_vi("a", None), _vi("m", None), _vi("g", None)])
    a, m, g = od.onnx.load(proto)(x)
    xp = np.pad(x[0, 0], 1, constant_values=np.nan)
    want_a = np.array([[np.nanmean(xp[2 * i:2 * i + 2, 2 * j:2 * j + 2]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(a.numpy()[0, 0], want_a, rtol=1e-5)
    want_m = np.array([[x[0, 0, i:i + 3:2, j:j + 3:2].max() for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(m.numpy()[0, 0], want_m)
    assert g.shape == (1, 1, 1, 1) and g.numpy().item() == x.max()


def test_shape_subgraph_folds_on_the_host():
    # x.view(x.shape[0], -1) as torch.onnx exports it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(np.array(0, np.int64))),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Constant", [], ["m1"], value_ints=[-1]),
             helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
             helper.make_node("Cast", ["shape"], ["shape64"], to=TensorProto.INT64),
             helper.make_node("Identity", ["shape64"], ["shape2"]),
             helper.make_node("Reshape", ["x", "shape2"], ["y"]),
             helper.make_node("ConstantOfShape", ["shape_c"], ["ones"],
                              value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Add", ["y", "ones"], ["z"])]
    inits = [_init("ax", np.array([0], np.int64)), _init("shape_c", np.array([1, 18], np.int64))]
    proto = _model(nodes, [_vi("x", ["N", 2, 3, 3])], [_vi("z", None)], inits)
    m = od.onnx.load(proto)
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x).numpy(), x.reshape(1, -1) + 1, rtol=1e-6)
    graph = od.function(m).graph(x)
    assert not ({"Shape", "Gather", "Concat"} & set(graph.ops())) and "reshape" in graph.ops()
    # Constant and ConstantOfShape were folded at import; the Shape chain reads x, so it runs on the host
    # per call (per traced signature in graph mode)
    assert [n.op_type for n in m._nodes] == ["Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Identity",
                                             "Reshape", "Add"]


def test_dropout_and_batchnorm_inference():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    s, b = rng.uniform(0.5, 1.5, 3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 1.5, 3).astype(np.float32)
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["n"], epsilon=1e-3),
             helper.make_node("Dropout", ["n"], ["y", "mask"], ratio=0.5)]
    proto = _model(nodes, [_vi("x", [2, 3, 4, 4])], [_vi("y", None)],
                   [_init("s", s), _init("b", b), _init("mean", mean), _init("var", var)], opset=9)
    y = od.onnx.load(proto)(x).numpy()
    c = (slice(None), None, None)
    want = (x - mean[c]) / np.sqrt(var[c] + 1e-3) * s[c] + b[c]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_batchnorm_training_mode_running_stats():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    s, b = np.ones(2, np.float32), np.zeros(2, np.float32)
    mean, var = np.zeros(2, np.float32), np.ones(2, np.float32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["y", "rm", "rv"],
                            training_mode=1, momentum=0.9, epsilon=1e-5)
    proto = _model([node], [_vi("x", [4, 2, 3, 3])], [_vi("y", None), _vi("rm", None), _vi("rv", None)],
                   [_init("s", s), _init("b", b), _init("mean", mean), _init("var", var)], opset=15)
    y, rm, rv = od.onnx.load(proto)(x)
    bm, bv = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))  # ONNX: biased variance
    np.testing.assert_allclose(rm.numpy(), 0.9 * mean + 0.1 * bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), 0.9 * var + 0.1 * bv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), (x - bm[:, None, None]) / np.sqrt(bv[:, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)


def test_several_outputs_are_a_tuple_and_concat_pad():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    nodes = [helper.make_node("Concat", ["x", "x"], ["c"], axis=1),
             helper.make_node("Pad", ["x", "pads", "val"], ["p"], mode="constant")]
    inits = [_init("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)), _init("val", np.array(7.0, np.float32))]
    proto = _model(nodes, [_vi("x", [1, 1, 2, 3])], [_vi("c", None), _vi("p", None)], inits, opset=13)
    c, p = od.onnx.load(proto)(x)
    np.testing.assert_array_equal(c.numpy(), np.concatenate([x, x], axis=1))
    np.testing.assert_array_equal(p.numpy(), np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 2)), constant_values=7.0))


# -- parameters, training, devices, graph mode -----------------------------------------------------


def test_params_gradient_tape_and_optimizer_step():
    proto, _ = _conv_net()
    m = od.onnx.load(proto)
    before = m(X).numpy()
    opt = od.SGD(m.params, lr=0.1, momentum=0.0)
    m.params = opt.params  # the model follows the optimizer's dict
    with od.GradientTape() as tape:
        params = list(m.params.values())
        tape.watch(params)
        loss = od.sum(m(X))
    grads = tape.gradient(loss, params)
    assert all(g.shape == p.shape for g, p in zip(grads, params))
    opt.step(dict(zip(m.params, grads)))
    after = m(X).numpy()
    assert after.sum() < before.sum()  # a step down the gradient of the sum
    # the graph follows the parameters too
    f = od.function(m)
    np.testing.assert_allclose(f(X).numpy(), after, rtol=1e-5, atol=1e-6)
    opt.step(dict(zip(m.params, grads)))
    np.testing.assert_allclose(f(X).numpy(), m(X).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(f(X).numpy(), after)


def test_function_matches_eager_and_apply():
    proto, _ = _conv_net()
    m = od.onnx.load(proto)
    f = od.function(m)
    np.testing.assert_allclose(f(X).numpy(), m(X).numpy(), rtol=1e-6, atol=1e-6)
    g = od.function(m.apply)
    np.testing.assert_allclose(g(m.params, X).numpy(), m(X).numpy(), rtol=1e-6, atol=1e-6)
    ops = f.graph(X).ops()
    assert any(op.startswith("conv2d") for op in ops) and "matmul" in ops


def test_to_device_and_device_of_inputs():
    proto, _ = _conv_net()
    m = od.onnx.load(proto)
    r = m.to("reference:0")
    assert all(t.device == od.Device("reference:0") for t in r.params.values())
    assert all(t.device == od.Device("numpy:0") for t in m.params.values())  # the original is unchanged
    y = r(od.tensor(X, device="reference:0"))
    assert y.device == od.Device("reference:0")
    np.testing.assert_allclose(y.numpy(), m(X).numpy(), rtol=1e-5, atol=1e-6)
    with od.device("reference:0"):  # NumPy inputs: the current device; params copied for the call
        assert m(X).device == od.Device("reference:0")
    devices = [d for d in od.devices() if d.backend == "opencl"]
    if devices:
        y = m.to(devices[0])(od.tensor(X, device=devices[0]))
        assert y.device == devices[0]
        np.testing.assert_allclose(y.numpy(), m(X).numpy(), rtol=1e-5, atol=1e-5)


def test_input_errors():
    proto, _ = _conv_net()
    m = od.onnx.load(proto)
    with pytest.raises(od.InvalidArgumentError, match="missing input"):
        m()
    with pytest.raises(od.InvalidArgumentError, match="unknown input"):
        m(z=X)
    with pytest.raises(od.ShapeError, match="'x'"):
        m(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(od.DTypeError, match="float32"):
        m(od.tensor(X.astype(np.float64)))


def test_astype_float64():
    proto, weights = _conv_net()
    m = od.onnx.load(proto).astype("float64")
    y = m(X.astype(np.float64))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), _np_conv_net(X.astype(np.float64), *weights), rtol=1e-10)


def test_training_batchnorm_updates_running_stats_eagerly():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) + 3.0
    w = rng.standard_normal((2, 2, 1, 1)).astype(np.float32)
    inits = [_init("w", w), _init("s", np.ones(2, np.float32)), _init("b", np.zeros(2, np.float32)),
             _init("mean", np.zeros(2, np.float32)), _init("var", np.ones(2, np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["y", "rm", "rv"],
                              training_mode=1, momentum=0.9)]
    m = od.onnx.load(_model(nodes, [_vi("x", [4, 2, 3, 3])], [_vi("y", [4, 2, 3, 3])], inits, opset=15))
    assert set(m.buffers) == {"mean", "var"} and set(m.trainable) == {"w", "s", "b"}
    with od.GradientTape() as tape:
        tape.watch(list(m.trainable.values()))
        loss = od.sum(od.mul(m(x), m(x)))
    grads = tape.gradient(loss, list(m.trainable.values()))
    assert len(grads) == 3
    conv = np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0])
    bm = conv.mean(axis=(0, 2, 3))
    # two eager calls: the running mean moved twice toward the batch mean
    np.testing.assert_allclose(m.params["mean"].numpy(), (1 - 0.9 ** 2) * bm, rtol=1e-4, atol=1e-5)
    f = od.function(m)
    before = m.params["mean"].numpy()
    f(x)  # graph mode does not update
    np.testing.assert_array_equal(m.params["mean"].numpy(), before)


def _devices():
    return ["numpy:0"] + (["opencl:0"] if od.Device("opencl:0") in od.devices() else [])


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("exponent", [TensorProto.INT32, TensorProto.INT64, F])
def test_pow_with_an_exponent_input_of_another_type(device, exponent):
    """ONNX Pow (opset >= 12) takes an int exponent beside a float base; as a graph input it is a
    device tensor, cast to the base's dtype (it was refused: 'pow: argument y got dtype int32')."""
    x = np.array([[1.5, 2.0, 3.0], [0.5, 4.0, 2.5]], np.float32)
    e = np.array([2, 3, 1], dtype=helper.tensor_dtype_to_np_dtype(exponent))
    m = od.onnx.load(_model([helper.make_node("Pow", ["x", "e"], ["y"])], [_vi("x", [2, 3]), _vi("e", [3], exponent)],
                            [_vi("y", [2, 3])], opset=15))
    for run in (m, od.function(m)):
        y = run(od.tensor(x, device=device), od.tensor(e, device=device))
        assert y.dtype == np.float32 and y.device == od.Device(device)
        np.testing.assert_allclose(y.numpy(), x ** e.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("alpha", [None, 1.0, 0.5])
def test_swish_imports_as_silu_or_its_scaled_form(alpha):
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    attrs = {} if alpha is None else {"alpha": alpha}
    with pytest.warns(UserWarning, match="opset 24"):
        m = od.onnx.load(_model([helper.make_node("Swish", ["x"], ["y"], **attrs)], [_vi("x", [3, 4])],
                                [_vi("y", [3, 4])], opset=24))
    a = 1.0 if alpha is None else alpha
    for run in (m, od.function(m)):
        np.testing.assert_allclose(run(x).numpy(), x / (1 + np.exp(-a * x)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", _devices())
def test_cast_of_a_device_tensor_is_tensor_astype(device):
    """ONNX Cast of a graph input runs Tensor.astype (the cast op), eager and in graph mode; a target
    no tensor can have is a clear error naming the dtypes allowed and the node."""
    x = np.array([[-1.7, 0.0, 2.5], [3.2, -0.4, 1.0]], np.float32)
    for to, want in ((TensorProto.INT32, x.astype(np.int32)), (TensorProto.INT64, x.astype(np.int64)),
                     (TensorProto.BOOL, x != 0), (TensorProto.DOUBLE, x.astype(np.float64))):
        m = od.onnx.load(_model([helper.make_node("Cast", ["x"], ["y"], to=to)], [_vi("x", [2, 3])],
                                [_vi("y", [2, 3], to)]))
        for run in (m, od.function(m)):
            y = run(od.tensor(x, device=device))
            assert y.dtype == want.dtype and y.device == od.Device(device)
            np.testing.assert_array_equal(y.numpy(), want)
    m = od.onnx.load(_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8, name="c8")],
                            [_vi("x", [2, 3])], [_vi("y", [2, 3], TensorProto.UINT8)]))
    refused = "(?s)cast: argument 'dtype' got .*uint8.*allowed: .*int32.*Cast node 'c8'"
    with pytest.raises(od.OpDispatchError, match=refused):
        m(od.tensor(x, device=device))
