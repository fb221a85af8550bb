"""torchvision's classification models, exported by torch.onnx.export, imported with od.onnx.load:
the same logits as ONNX Runtime on numpy:0 and opencl:0, eager and graph, and the same again after
od.onnx.export writes them back out.

Slow (minutes), and needs the torch extra and onnxruntime (pip install -e '.[torch,bench]'):
``bash scripts/test.sh -m slow tests/test_torchvision_models.py``. The same check as a script:
``python examples/torchvision_export.py resnet18 r.onnx`` then ``opdispatch conformance --models r.onnx``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import opdispatch as od

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="the torch extra is not installed (pip install -e '.[torch]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[bench]')")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
try:
    import torchvision_export as tve  # noqa: E402
    tve.import_torchvision()
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"torchvision does not import: {exc}", allow_module_level=True)

SIZES = {"vgg11": 224}  # its classifier pools to 7x7: smaller inputs are not a factor of that
SIZE = 64
TOLERANCE = 1e-3  # of the output scale (max |logit|), float32


def devices() -> list[str]:
    names = [str(d) for d in od.devices()]
    return [d for d in ("numpy:0", "opencl:0") if d in names]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchvision")
    files = {}
    for name in tve.MODELS:
        size = SIZES.get(name, SIZE)
        path = str(root / f"{name}.onnx")
        tve.export(tve.build(name, size=size), path, batch=2, size=size)
        files[name] = (path, size)
    return files


def ort_logits(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", tve.MODELS)
def test_model_matches_onnx_runtime(exported, name: str, tmp_path) -> None:
    path, size = exported[name]
    x = tve.calibration_batch(2, size, 5)
    want = ort_logits(path, x)
    scale = float(np.abs(want).max())
    model = od.onnx.load(path)
    for device in devices():
        m = model.to(device)
        xt = od.tensor(x, device=device)
        for mode, fn in (("eager", m), ("graph", od.function(m))):
            got = fn(xt).numpy()
            err = float(np.abs(got - want).max())
            assert err <= TOLERANCE * scale, f"{name} on {device} ({mode}): max error {err:.3g}, scale {scale:.3g}"
            assert (got.argmax(axis=1) == want.argmax(axis=1)).all(), f"{name} on {device} ({mode}): top-1 differs"
    back = str(tmp_path / f"{name}_back.onnx")
    od.onnx.export(model, (od.tensor(x),), back)
    again = ort_logits(back, x)
    assert float(np.abs(again - want).max()) <= TOLERANCE * scale, f"{name}: exported back, ONNX Runtime differs"
