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
    # numpy2:0 runs the NumPy backend's kernels; numpy:0 may have run a provider's (oneDNN's conv2d)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    with od.device("numpy2:0"):  # array-like inputs go to the od.device
        assert loaded(*[a.numpy() for a in args]).device == od.Device("numpy2:0")


def _tamper(path, change, sign=True):
    """Edit a saved graph; with ``sign``, as someone who also recomputes its digest would (so the
    checks behind the digest are the ones that must refuse it)."""
    from opdispatch.graph.serialize import content_digest

    with open(path) as fh:
        doc = json.load(fh)
    change(doc)
    if sign:
        doc["sha256"] = content_digest(doc)
    with open(path, "w") as fh:
        json.dump(doc, fh)


def test_an_edit_that_keeps_the_file_valid_is_refused_by_its_digest(saved):
    _, path, _, _ = saved
    _tamper(path, lambda d: d.update(name="renamed"), sign=False)
    with pytest.raises(od.GraphFormatError, match=r"net.json: sha256: does not match the file's content"):
        od.load_graph(path)


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
    assert doc["version"] == 3 and set(doc["data"]) == {str(c) for c in g.constants}
    from opdispatch.graph.serialize import content_digest
    assert doc["sha256"] == content_digest(doc)
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


# -- attributes are stored canonical ----------------------------------------------------------------------

def _wide_net(x):
    y = od.conv2d(x, W, B, stride=2, padding="SAME", dilation=1)
    y = od.max_pool2d(od.leaky_relu(y, 0.2), 2, stride=1, ceil_mode=True)
    z = od.concat([y, od.neg(y)], axis=-3)
    return od.softmax(od.mean(od.reshape(z, (2, -1)), axis=-1, keepdims=True), axis=0), od.sum(z)


def _with_attrs(graph, index, attrs):
    """``graph`` with node ``index``'s attributes replaced (given as a user might write them)."""
    from opdispatch.graph.ir import make_node

    nodes = list(graph.nodes)
    n = nodes[index]
    nodes[index] = make_node(n.op, n.inputs, n.outputs, attrs, n.device, n.sources, n.fused_from,
                             n.decomposed_from, n.grad_of, n.layout)
    return graph.replace(nodes=tuple(nodes))


def test_save_load_save_gives_the_same_bytes(tmp_path):
    x = od.tensor(RNG.standard_normal((2, 3, 9, 9)).astype("float32"))
    g = od.function(_wide_net).graph(x)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    g.save(str(first))
    loaded = od.load_graph(str(first))
    loaded.save(str(second))
    assert first.read_bytes() == second.read_bytes()
    assert [dict(n.attrs) for n in loaded.nodes] == [dict(n.attrs) for n in g.nodes]
    for got, want in zip(loaded(x), g(x)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_attributes_in_a_user_form_are_saved_canonical(tmp_path):
    """conv2d's attributes as a user writes them (an int stride, 'SAME', a list, a NumPy int) are
    saved in the form tracing records, so the file is byte-identical to the traced graph's."""
    g = od.function(net).graph(*_args())
    conv = next(i for i, n in enumerate(g.nodes) if n.op.startswith("conv2d"))
    assert dict(g.nodes[conv].attrs) == {"stride": (1, 1), "padding": ((1, 1), (1, 1)), "dilation": (1, 1),
                                         "groups": 1}
    loose = _with_attrs(g, conv, {"stride": 1, "padding": "same", "dilation": [1, 1], "groups": np.int64(1)})
    canonical, user = tmp_path / "canonical.json", tmp_path / "user.json"
    g.save(str(canonical))
    loose.save(str(user))
    assert user.read_bytes() == canonical.read_bytes()
    assert json.loads(user.read_text())["nodes"][conv]["attrs"] == {
        "stride": [1, 1], "padding": [[1, 1], [1, 1]], "dilation": [1, 1], "groups": 1}


def test_a_file_with_attributes_in_a_user_form_loads_them_canonical(saved, tmp_path):
    g, path, args, want = saved
    doc = json.loads(open(path).read())
    conv = next(i for i, n in enumerate(doc["nodes"]) if n["op"].startswith("conv2d"))
    doc["nodes"][conv]["attrs"] = {"stride": 1, "padding": "SAME", "dilation": [1, 1], "groups": 1}
    doc["version"] = 2  # written by hand: a version 2 file carries no digest
    del doc["sha256"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    loaded = od.load_graph(str(edited))
    assert dict(loaded.nodes[conv].attrs) == dict(g.nodes[conv].attrs)  # what kernels receive
    np.testing.assert_array_equal(loaded(*args).numpy(), want.numpy())
    loaded.save(str(tmp_path / "again.json"))
    assert (tmp_path / "again.json").read_bytes() == open(path, "rb").read()


def test_a_graph_whose_node_does_not_check_is_not_saved(saved, tmp_path):
    g = saved[0]
    conv = next(i for i, n in enumerate(g.nodes) if n.op.startswith("conv2d"))
    bad = _with_attrs(g, conv, {"stride": 0, "padding": 0, "dilation": 1, "groups": 1})
    with pytest.raises(od.GraphFormatError, match=rf"save: .*bad.json: node {conv}: the node does not check: "
                                                  r".*conv2d_bias_relu: argument 'stride' got 0"):
        bad.save(str(tmp_path / "bad.json"))
    assert not (tmp_path / "bad.json").exists()
