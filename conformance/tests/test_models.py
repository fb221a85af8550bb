"""Whole-model conformance (``opdispatch conformance --models``): the light ONNX models against the reference.

All nine light models run on numpy:0 and opencl:0, eager and graph, in the default (CI) tests:
about 45 s on two cores, most of it the float64 reference of VGG-19 and the first OpenCL kernel
builds. Exporting them back runs for two of them by default, for all nine under ``slow``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import opdispatch as od

onnx = pytest.importorskip("onnx", reason="the light models ship with the onnx package")

from opdispatch.cli import main  # noqa: E402
from opdispatch_conformance import models  # noqa: E402

LIGHT = {models.model_name(p): p for p in models.light_models()}
FAST = ("squeezenet", "shufflenet")


def _devices() -> list[str]:
    devs = ["numpy:0"]
    if any(str(d) == "opencl:0" for d in od.devices()):
        devs.append("opencl:0")
    return devs


def _check(results: list) -> None:
    bad = [(r.model, r.device, r.mode, r.message) for r in results if r.status != models.PASSED]
    assert not bad, bad
    for r in results:
        assert r.top1_agrees and r.max_abs <= r.atol
        assert r.top1_margin > 2 * r.atol, f"{r.model}: top-1 is a near tie (margin {r.top1_margin}, atol {r.atol})"


def test_light_models_are_there():
    assert len(LIGHT) == 9, sorted(LIGHT)


def test_all_light_models_on_every_device():
    """Issue 13's target, in CI: all nine, numpy:0 and opencl:0, eager and graph."""
    results = models.run_models(list(LIGHT.values()), _devices())
    assert len(results) == 9 * len(_devices()) * 2
    _check(results)


def test_seeded_weights_are_deterministic_and_scaled():
    proto = onnx.load(LIGHT["squeezenet"])
    a, b = models.seed_weights(proto, 3), models.seed_weights(proto, 3)
    assert a.SerializeToString() == b.SerializeToString()
    assert not any(n.op_type == "ConstantOfShape" for n in a.graph.node)
    c = models.seed_weights(proto, 4)
    assert a.SerializeToString() != c.SerializeToString()
    w = {t.name: onnx.numpy_helper.to_array(t) for t in a.graph.initializer}
    conv1 = w["conv1_w_0"]  # He normal: std sqrt(2 / fan_in)
    fan_in = int(np.prod(conv1.shape[1:]))
    assert abs(conv1.std() / np.sqrt(2 / fan_in) - 1) < 0.1


def test_cli_models_with_a_user_file(tmp_path, capsys):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "w")
    nodes = [helper.make_node("Gemm", ["x", "w"], ["l"], transB=1), helper.make_node("Softmax", ["l"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])], initializer=[w])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    report = tmp_path / "models.json"
    rc = main(["conformance", "--models", str(path), "--device", "numpy:0", "--report", str(report)])
    out = capsys.readouterr()
    assert rc == 0, out
    assert "tiny" in out.out and "[models 1/1]" in out.err
    data = json.loads(report.read_text())
    assert data["kind"] == "models" and len(data["models"]) == 2
    row = data["models"][0]
    assert row["status"] == "passed" and row["top1_agrees"] and row["seconds"] >= 0 and row["rtol"] > 0
    assert {r["mode"] for r in data["models"]} == {"eager", "graph"}


def test_cli_models_bad_file_is_a_failed_row(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    rc = main(["conformance", "--models", str(bad), "--device", "numpy:0", "--mode", "eager"])
    out = capsys.readouterr()
    assert rc == 1 and "OnnxImportError" in out.err + out.out


def _export_round_trip(name: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'opdispatch[test]')")
    model = models.prepare(LIGHT[name])
    feeds = models.sample_inputs(model)
    xs = [od.tensor(feeds[s.name]) for s in model.input_specs]
    want = model(*xs)
    want = (want,) if isinstance(want, od.Tensor) else want
    path = str(tmp_path / f"{name}.onnx")
    od.onnx.export(model, tuple(xs), path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {f"input_{i}": x.numpy() for i, x in enumerate(xs)})
    for g, w in zip(got, want):
        w = w.numpy()
        scale = max(float(np.abs(w).max()), 1e-30)
        assert float(np.abs(g - w).max()) <= 1e-4 * scale, f"{name}: ONNX Runtime on the exported model differs"
        assert (g.reshape(len(g), -1).argmax(1) == w.reshape(len(w), -1).argmax(1)).all()


@pytest.mark.parametrize("name", FAST)
def test_an_imported_model_exports_back_and_onnx_runtime_agrees(name: str, tmp_path) -> None:
    _export_round_trip(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(LIGHT) - set(FAST)))
def test_every_light_model_exports_back_and_onnx_runtime_agrees(name: str, tmp_path) -> None:
    _export_round_trip(name, tmp_path)


def test_the_table_sizes_its_columns_from_the_content():
    """A long model name ("mobilenet_v3_small", 18 characters) or device name stays in its column."""
    rows = [models.ModelResult("mobilenet_v3_small", "numpy:0", "eager", models.PASSED, 1e-6, 2e-5, 1e-2, 1e-3,
                               True, 0.5, 1.25),
            models.ModelResult("a_much_longer_model_name_v2", "opencl:12", "graph", models.ERROR)]
    lines = models.table(rows).splitlines()
    assert "mobilenet_v3_smallnumpy:0" not in lines[2]
    head = lines[0]
    for line, row in zip(lines[2:], rows):
        cells = line.split()
        assert cells[:4] == [row.model, row.device, row.mode, row.status]
        assert line.index(row.device) == head.index("device")  # text columns start under their heads
        assert line.rstrip().endswith(f"{row.seconds:.2f}") and len(line) <= len(head)  # numbers end under theirs
