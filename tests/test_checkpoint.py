"""Checkpoints: round trips, resuming equals not stopping, other devices, and files that are not ours."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_mini


def _model(rng):
    return {"w": od.tensor(rng.standard_normal((4, 3)), dtype="float32"),
            "b": od.tensor(np.zeros(3), dtype="float32")}


def _step(opt, x):
    names = list(opt.params)
    with od.GradientTape() as tape:
        tape.watch([opt.params[n] for n in names])
        loss = od.sum(od.tanh(od.add(od.matmul(x, opt.params["w"]), opt.params["b"])))
    opt.step(dict(zip(names, tape.gradient(loss, [opt.params[n] for n in names]))))


@pytest.mark.parametrize("cls", [od.SGD, od.Adam])
def test_resuming_from_a_checkpoint_equals_not_stopping(tmp_path, cls):
    rng = np.random.default_rng(0)
    x = od.tensor(rng.standard_normal((5, 4)), dtype="float32")
    straight = cls(_model(np.random.default_rng(1)), lr=0.01)
    for _ in range(4):
        _step(straight, x)
    first = cls(_model(np.random.default_rng(1)), lr=0.01)
    for _ in range(2):
        _step(first, x)
    path = tmp_path / "ckpt.npz"
    state = {"running": od.tensor(np.arange(3.0), dtype="float32")}
    od.save_checkpoint(path, first.params, state=state, optimizer=first, metadata={"epoch": 2, "note": "hi"})
    ck = od.load_checkpoint(path)
    assert ck.metadata == {"epoch": 2, "note": "hi"}
    np.testing.assert_array_equal(ck.state["running"].numpy(), [0, 1, 2])
    assert type(ck.optimizer) is cls and ck.optimizer.steps == 2 and ck.optimizer.lr == 0.01
    for _ in range(2):
        _step(ck.optimizer, x)
    for k in straight.params:
        assert ck.optimizer.params[k].dtype == np.float32
        np.testing.assert_array_equal(ck.optimizer.params[k].numpy(), straight.params[k].numpy())


def test_a_checkpoint_loads_on_another_device(tmp_path, clean_registry):
    od.register_plugin(make_mini(), name="mini")
    params = _model(np.random.default_rng(0))
    opt = od.SGD(params, lr=0.1)
    opt.step({"w": od.tensor(np.ones((4, 3)), dtype="float32")})
    od.save_checkpoint(tmp_path / "c.npz", opt.params, optimizer=opt)
    ck = od.load_checkpoint(tmp_path / "c.npz", device="mini:1")
    assert {t.device for t in ck.params.values()} == {od.Device("mini:1")}
    assert ck.optimizer.slots["velocity"]["w"].device == od.Device("mini:1")
    np.testing.assert_array_equal(ck.params["w"].numpy(), opt.params["w"].numpy())
    with od.device("mini:0"):
        assert od.load_checkpoint(tmp_path / "c.npz").params["b"].device == od.Device("mini:0")


def _write_npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _meta(**over):
    meta = {"format": "opdispatch-checkpoint", "version": 1, "optimizer": None, "metadata": {},
            "arrays": {"params/w": {"shape": [2], "dtype": "float32"}}}
    meta.update(over)
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable .npz"),
    (lambda p: _write_npz(p, **{"params/w": np.ones(2, np.float32)}), "has no meta.json"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(version=7), "params/w": np.ones(2, np.float32)}), "version 7"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(format="other"), "params/w": np.ones(2, np.float32)}),
     "not an opdispatch checkpoint"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(), "params/w": np.ones(3, np.float32)}), "meta.json says"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(), "params/w": np.ones(2, np.float32),
                                "params/x": np.ones(2, np.float32)}), "unexpected"),
    (lambda p: _write_npz(p, **{"meta.json": np.frombuffer(b"{nope", dtype=np.uint8)}), "not valid JSON"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(), "params/w": np.array([object(), 1], dtype=object)}),
     "pickled object arrays are refused"),
    (lambda p: _write_npz(p, **{"meta.json": _meta(optimizer={"kind": "os.system", "settings": {}}),
                                "params/w": np.ones(2, np.float32)}), "not understood"),
])
def test_malformed_files_are_clear_errors(tmp_path, make, fragment):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(od.CheckpointError, match=fragment):
        od.load_checkpoint(path)


def test_a_missing_file_and_unsaveable_metadata(tmp_path):
    with pytest.raises(od.CheckpointError, match="no file"):
        od.load_checkpoint(tmp_path / "nowhere.npz")
    with pytest.raises(od.CheckpointError, match="not JSON-able"):
        od.save_checkpoint(tmp_path / "x.npz", {"w": od.tensor([1.0])}, metadata={"f": object()})
    assert not (tmp_path / "x.npz").exists()


def test_the_file_is_a_plain_npz_without_pickles(tmp_path):
    od.save_checkpoint(tmp_path / "c.npz", {"w": od.tensor([1.0, 2.0], dtype="float64")},
                       optimizer=od.Adam({"w": od.tensor([1.0, 2.0], dtype="float64")}))
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        assert set(zf.namelist()) == {"meta.json.npy", "params/w.npy"}  # Adam has no slots before a step
    with np.load(io.BytesIO((tmp_path / "c.npz").read_bytes()), allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        meta = json.loads(npz["meta.json"].tobytes())
    assert meta["optimizer"]["kind"] == "adam" and meta["arrays"] == {"params/w": {"shape": [2], "dtype": "float64"}}
