"""Saving and loading graphs: round trips, running on another device, and refusing bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import opdispatch as od
from opdispatch.backend import DeviceInfo
from fake_backends import make_plugin

RNG = np.random.default_rng(2)
W = od.tensor(RNG.standard_normal((4, 3, 3, 3)).astype("float32"))
B = od.tensor(RNG.standard_normal(4).astype("float32"))


def net(x, w2):
    y = od.relu(od.conv2d(x, W, B, padding="SAME"))
    y = od.max_pool2d(y, 2)
    return od.softmax(od.matmul(od.flatten(y), w2))


def _args():
    return (od.tensor(RNG.standard_normal((2, 3, 8, 8)).astype("float32")),
            od.tensor(RNG.standard_normal((64, 5)).astype("float32")))


@pytest.fixture
def saved(tmp_path):
    f = od.function(net)
    args = _args()
    g = f.graph(*args)
    path = str(tmp_path / "net.json")
    g.save(path)
    return g, path, args, f(*args)


def test_round_trip_runs_and_prints_the_same(saved):
    g, path, args, want = saved
    loaded = od.load_graph(path)
    assert loaded.ops() == g.ops()
    assert str(loaded) == str(g.replace())  # the same graph (the memory plan is recomputed on load)
    np.testing.assert_array_equal(loaded(*args).numpy(), want.numpy())
    assert all(isinstance(c, np.ndarray) and not c.flags.writeable for c in loaded.constants.values())


def test_loaded_graph_runs_on_another_device(saved, clean_registry):
    from opdispatch_numpy.plugin import opdispatch_kernels

    od.register_plugin(make_plugin("numpy2", opdispatch_kernels(), devices=[DeviceInfo(0)]))
    _, path, args, want = saved
    loaded = od.load_graph(path)
    moved = [a.to("numpy2:0") for a in args]
    out = loaded(*moved)
    assert out.device == od.Device("numpy2:0")
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    with od.device("numpy2:0"):  # array-like inputs go to the od.device
        assert loaded(*[a.numpy() for a in args]).device == od.Device("numpy2:0")


def _tamper(path, change):
    with open(path) as fh:
        doc = json.load(fh)
    change(doc)
    with open(path, "w") as fh:
        json.dump(doc, fh)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["nodes"][0].update(op="__import__('os').system"), "unknown op"),
    (lambda d: d["nodes"][0].update(inputs=[999, None, None]), "not declared"),
    (lambda d: d["values"][str(d["outputs"][0])].update(shape=[1, 2]), "do not match"),
    (lambda d: d["values"]["0"].update(dtype="object"), "dtype"),
    (lambda d: d["nodes"][0]["attrs"].update(stride={"a": 1}), "attrs"),
    (lambda d: d["nodes"][0]["attrs"].update(stride=[0, 0]), "does not check"),
    (lambda d: d.update(nodes=list(reversed(d["nodes"]))), "before it is defined"),
    (lambda d: d.update(format="pickle"), "not an opdispatch graph"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d["values"]["0"].update(device=5), "device"),
])
def test_tampered_json_is_a_format_error(saved, change, match):
    _, path, _, _ = saved
    _tamper(path, change)
    with pytest.raises(od.GraphFormatError, match=match):
        od.load_graph(path)


def save_v1(g, path):
    """Write ``g`` as earlier releases did: ``<base>.json`` (version 1) and the constants in ``<base>.npz``."""
    from opdispatch.graph.serialize import to_dict

    doc = to_dict(g)
    del doc["data"]
    doc["version"] = 1
    base = path[:-5] if path.endswith(".json") else path
    with open(base + ".json", "w") as fh:
        json.dump(doc, fh, indent=1)
    np.savez(base + ".npz", **{f"c{c}": np.asarray(a) for c, a in g.constants.items()})


def test_save_writes_one_self_contained_json_file(saved, tmp_path):
    g, path, args, want = saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]
    with open(path) as fh:
        doc = json.load(fh)
    assert doc["version"] == 2 and set(doc["data"]) == {str(c) for c in g.constants}
    g.save(str(tmp_path / "bare"))  # a path without .json gets it, as before
    np.testing.assert_array_equal(od.load_graph(str(tmp_path / "bare"))(*args).numpy(), want.numpy())
    assert (tmp_path / "bare.json").exists() and not (tmp_path / "bare.npz").exists()


def test_the_version_1_pair_still_loads(saved, tmp_path):
    g, _, args, want = saved
    path = str(tmp_path / "old.json")
    save_v1(g, path)
    loaded = od.load_graph(path)
    assert str(loaded) == str(g.replace())
    np.testing.assert_array_equal(loaded(*args).numpy(), want.numpy())


def test_malformed_files_are_format_errors(saved, tmp_path):
    g, _, _, _ = saved
    path = str(tmp_path / "old.json")
    save_v1(g, path)
    npz = path[:-5] + ".npz"
    with open(npz, "wb") as fh:
        fh.write(b"not a zip")
    with pytest.raises(od.GraphFormatError, match="constants"):
        od.load_graph(path)
    np.savez(npz, c0=np.array([{"evil": 1}], dtype=object))  # a pickled object array
    with pytest.raises(od.GraphFormatError, match="pickle"):
        od.load_graph(path)
    with open(path, "w") as fh:
        fh.write("{not json")
    with pytest.raises(od.GraphFormatError, match="not valid JSON"):
        od.load_graph(path)
    with pytest.raises(od.GraphFormatError, match="no such file"):
        od.load_graph(path + ".missing")


def test_constant_with_wrong_shape_is_a_format_error(saved, tmp_path):
    g, _, _, _ = saved
    path = str(tmp_path / "old.json")
    save_v1(g, path)
    np.savez(path[:-5] + ".npz", **{f"c{c}": np.zeros(1, np.float32) for c in g.constants})
    with pytest.raises(od.GraphFormatError, match="constant"):
        od.load_graph(path)


def test_loaded_graph_checks_its_inputs(saved):
    _, path, args, _ = saved
    loaded = od.load_graph(path)
    with pytest.raises(od.InvalidArgumentError, match="input 0"):
        loaded(args[1], args[1])
