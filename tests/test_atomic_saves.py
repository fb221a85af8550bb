"""Saves are atomic: an interrupted save (an exception, KeyboardInterrupt) leaves the previous file
intact and no temporary behind; concurrent saves to one path (threads and processes) never let a
reader see anything but one complete version; the last writer wins."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import opdispatch as od
import opdispatch.files as files


def _params(i):
    return {"w": od.tensor(np.full((64, 32), float(i)), dtype="float32"),
            "b": od.tensor(np.full(32, float(i)), dtype="float32")}


def _save_ckpt(path, i):
    opt = od.SGD(_params(i), lr=0.1)
    opt.step({"w": od.tensor(np.zeros((64, 32)), dtype="float32")})
    od.save_checkpoint(path, opt.params, optimizer=opt, metadata={"version": i})


def _check_ckpt(ck):
    i = ck.metadata["version"]
    for t in ck.params.values():
        assert np.all(t.numpy() == i), f"a mixed file: metadata says {i}"
    assert np.all(ck.optimizer.slots["velocity"]["w"].numpy() == 0)
    return i


def _graph(i):
    c = od.tensor(np.full((16, 16), float(i)), dtype="float32")
    b = od.tensor(np.full(16, float(i)), dtype="float32")

    def f(x):
        return od.add(od.matmul(x, c), b)

    g = od.function(f).graph(od.tensor(np.ones((2, 16)), dtype="float32"))
    return g.replace(name=f"g{i}")


def _check_graph(g):
    i = int(g.name[1:])
    for arr in g.constants.values():
        assert np.all(arr == i), f"a hybrid graph: named {g.name}"
    out = g(od.tensor(np.ones((2, 16)), dtype="float32")).numpy()
    np.testing.assert_allclose(out, 17 * i)
    return i


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


# -- interrupted saves ---------------------------------------------------------------------------------

class Boom(Exception):
    pass


def _half_then(exc):
    """A replacement for np.savez that writes half a zip, then raises ``exc``."""
    real = np.savez

    def savez(fh, *args, **kwargs):
        import io

        buf = io.BytesIO()
        real(buf, *args, **kwargs)
        fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        fh.flush()
        raise exc
    return savez


@pytest.mark.parametrize("exc", [Boom("disk on fire"), KeyboardInterrupt(), OSError(28, "No space left on device")],
                         ids=["exception", "KeyboardInterrupt", "ENOSPC"])
def test_an_interrupted_checkpoint_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, exc):
    path = tmp_path / "ckpt.npz"
    _save_ckpt(path, 1)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", _half_then(exc))
    with pytest.raises(type(exc)):
        _save_ckpt(path, 2)
    assert _listing(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == before and _check_ckpt(od.load_checkpoint(path)) == 1


@pytest.mark.parametrize("stage", ["fsync", "chmod", "replace"])
@pytest.mark.parametrize("exc", [Boom("late failure"), KeyboardInterrupt()], ids=["exception", "KeyboardInterrupt"])
def test_failures_after_the_data_is_written_also_clean_up(tmp_path, monkeypatch, stage, exc):
    path = tmp_path / "ckpt.npz"
    _save_ckpt(path, 1)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise exc
    monkeypatch.setattr(files.os, stage, fail)
    with pytest.raises(type(exc)):
        _save_ckpt(path, 2)
    monkeypatch.undo()
    assert _listing(tmp_path) == ["ckpt.npz"] and path.read_bytes() == before


@pytest.mark.parametrize("exc", [Boom("disk on fire"), KeyboardInterrupt()], ids=["exception", "KeyboardInterrupt"])
def test_an_interrupted_graph_save_keeps_the_old_graph(tmp_path, monkeypatch, exc):
    path = str(tmp_path / "g.json")
    _graph(1).save(path)
    before = open(path, "rb").read()
    real_write = files.atomic_write

    def half_write(target, write):
        def half(fh):
            import io

            buf = io.BytesIO()
            write(buf)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            raise exc
        real_write(target, half)
    monkeypatch.setattr("opdispatch.graph.serialize.atomic_write", half_write)
    with pytest.raises(type(exc)):
        _graph(2).save(path)
    assert _listing(tmp_path) == ["g.json"]
    assert open(path, "rb").read() == before and _check_graph(od.load_graph(path)) == 1


def test_a_graph_is_one_file_so_there_is_no_pair_to_tear(tmp_path):
    """The old format wrote g.json then g.npz: a failure between them loaded as a hybrid. Now a
    save writes one file; a stale .npz beside it (from an old save) is ignored."""
    from test_graph_serialize import save_v1

    path = str(tmp_path / "g.json")
    save_v1(_graph(1), path)
    assert _listing(tmp_path) == ["g.json", "g.npz"]
    _graph(2).save(path)
    assert _check_graph(od.load_graph(path)) == 2  # not the old constants from g.npz


def test_atomic_write_cleans_up_after_a_writer_that_raises_midway(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    seen = []

    def writer(fh):
        fh.write(b"new data, half of it")
        seen.extend(_listing(tmp_path))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(str(target), writer)
    assert target.read_bytes() == b"old" and _listing(tmp_path) == ["t.bin"]
    tmp = [n for n in seen if n != "t.bin"]
    assert len(tmp) == 1 and tmp[0].startswith(".t.bin.") and tmp[0].endswith(".tmp")  # beside it, unique, hidden


def test_no_file_appears_when_the_first_save_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _half_then(Boom("no")))
    with pytest.raises(Boom):
        _save_ckpt(tmp_path / "new.npz", 1)
    assert _listing(tmp_path) == []


def test_a_missing_directory_is_an_oserror_and_creates_nothing(tmp_path):
    with pytest.raises(OSError):
        _save_ckpt(tmp_path / "no" / "such" / "ckpt.npz", 1)
    assert _listing(tmp_path) == []


def test_permissions_follow_umask_for_new_files_and_are_kept_on_replace(tmp_path):
    old = os.umask(0o027)
    try:
        _save_ckpt(tmp_path / "c.npz", 1)
        _graph(1).save(str(tmp_path / "g.json"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "c.npz").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "g.json").st_mode) == 0o640
    os.chmod(tmp_path / "c.npz", 0o604)
    _save_ckpt(tmp_path / "c.npz", 2)
    assert stat.S_IMODE(os.stat(tmp_path / "c.npz").st_mode) == 0o604


# -- concurrent saves ----------------------------------------------------------------------------------

def _hammer(save, load, check, path, writers=6, rounds=8, readers=3):
    """``writers`` threads each save their version ``rounds`` times to ``path`` while ``readers``
    threads load it; every load must be one complete version."""
    save(path, 0)
    errors, seen = [], set()
    done = threading.Event()

    def write(i):
        try:
            for _ in range(rounds):
                save(path, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def read():
        try:
            while not done.is_set():
                seen.add(check(load(path)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    rs = [threading.Thread(target=read) for _ in range(readers)]
    ws = [threading.Thread(target=write, args=(i,)) for i in range(1, writers + 1)]
    for t in rs + ws:
        t.start()
    for t in ws:
        t.join()
    done.set()
    for t in rs:
        t.join()
    assert not errors, errors[:3]
    assert seen and seen <= set(range(writers + 1))
    return seen


def test_concurrent_checkpoint_saves_and_loads(tmp_path):
    path = tmp_path / "c.npz"
    _hammer(_save_ckpt, od.load_checkpoint, _check_ckpt, path)
    assert _listing(tmp_path) == ["c.npz"]
    _check_ckpt(od.load_checkpoint(path))


def test_concurrent_graph_saves_and_loads(tmp_path):
    graphs = {i: _graph(i) for i in range(7)}
    path = str(tmp_path / "g.json")
    _hammer(lambda p, i: graphs[i].save(p), od.load_graph, _check_graph, path)
    assert _listing(tmp_path) == ["g.json"]


def test_the_last_writer_wins(tmp_path):
    path = tmp_path / "c.npz"
    for i in (3, 1, 2):
        _save_ckpt(path, i)
    assert _check_ckpt(od.load_checkpoint(path)) == 2


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import opdispatch as od
    path, i, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    w = {"w": od.tensor(np.full((256, 64), float(i)), dtype="float32"),
         "b": od.tensor(np.full(64, float(i)), dtype="float32")}
    opt = od.SGD(w, lr=0.1)
    opt.step({"w": od.tensor(np.zeros((256, 64)), dtype="float32")})
    for _ in range(rounds):
        od.save_checkpoint(path, opt.params, optimizer=opt, metadata={"version": i})
""")


def test_concurrent_saves_from_several_processes(tmp_path):
    path = tmp_path / "c.npz"
    _save_ckpt(path, 0)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(i), "15"]) for i in range(1, 4)]
    loads = 0
    while any(p.poll() is None for p in procs):
        _check_ckpt(od.load_checkpoint(path))
        loads += 1
    assert all(p.returncode == 0 for p in procs)
    assert _check_ckpt(od.load_checkpoint(path)) in (1, 2, 3) and loads > 0
    assert _listing(tmp_path) == ["c.npz"]
