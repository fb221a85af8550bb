"""Hostile files: every crafted checkpoint and graph file is refused with the format's typed error,
naming the file and the part at fault, fast (< 1 s), without blocking, and without allocating more
than the file holds (the size bombs would have made the old loaders allocate 2 GiB)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import opdispatch as od
import opdispatch.files as files

GiB = 2**30
TIME_LIMIT_S = 1.0
PEAK_LIMIT = 64 * 2**20  # bytes traced (tracemalloc sees NumPy's buffers too) while one file is refused


# -- building zips and .npy members byte by byte ----------------------------------------------------------

def zip_bytes(entries, comment=b"", count=None):
    """A zip archive from ``entries`` (dicts): ``name``, ``data`` (the stored bytes), and forgeries:
    ``method``, ``flags``, ``crc``, ``file_size``, ``compress_size`` (declared), ``offset`` (central
    directory's local-header offset), ``local_name``, ``no_local`` (central entry only)."""
    out, central = bytearray(), bytearray()
    for e in entries:
        name = e["name"].encode("utf-8")
        data = e.get("data", b"")
        crc = e.get("crc", zlib.crc32(data))
        fsize, csize = e.get("file_size", len(data)), e.get("compress_size", len(data))
        method, flags = e.get("method", 0), e.get("flags", 0) | 0x800
        offset = len(out)
        if not e.get("no_local"):
            lname = e.get("local_name", e["name"]).encode("utf-8")
            out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, csize & 0xFFFFFFFF,
                               fsize & 0xFFFFFFFF, len(lname), 0) + lname + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc,
                               csize & 0xFFFFFFFF, fsize & 0xFFFFFFFF, len(name), 0, 0, 0, 0, 0,
                               e.get("offset", offset)) + name
    cd_offset = len(out)
    out += central
    n = len(entries) if count is None else count
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n & 0xFFFF, n & 0xFFFF, len(central), cd_offset,
                       len(comment)) + comment
    return bytes(out)


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_header(header, version=1, length=None, magic=b"\x93NUMPY"):
    """A ``.npy`` prefix with ``header`` (text) verbatim; ``length`` forges the declared length."""
    raw = header.encode("latin1")
    n = len(raw) if length is None else length
    size = struct.pack("<H", n) if version == 1 else struct.pack("<I", n)
    return magic + bytes([version, 0]) + size + raw


def header_of(descr, shape, fortran=False):
    return "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran, tuple(shape))


def deflate_bomb(prefix, zeros):
    """A raw deflate stream of ``prefix`` followed by ``zeros`` zero bytes (a multiple of 1 MiB),
    about 1 KiB per MiB, built without compressing ``zeros`` bytes: with full flushes, every MiB of
    zeros compresses to the same block."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    mib = bytes(2**20)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(zeros // 2**20):
        crc = zlib.crc32(mib, crc)
    return head + block * (zeros // 2**20) + c.flush(), crc


# -- checkpoints ----------------------------------------------------------------------------------------

def meta(**over):
    m = {"format": "opdispatch-checkpoint", "version": 1, "optimizer": None, "metadata": {},
         "arrays": {"params/w": {"shape": [2], "dtype": "float32"}}}
    m.update(over)
    return m


def meta_npy(m):
    if isinstance(m, bytes) and m.startswith(b"\x93NUMPY"):
        return m
    text = m if isinstance(m, (bytes, str)) else json.dumps(m)
    return npy(np.frombuffer(text.encode() if isinstance(text, str) else text, dtype=np.uint8))


W = npy(np.array([1.0, 2.0], np.float32))


def ckpt(m=None, **members):
    """Zip bytes of a checkpoint: meta.json (dict, text or raw .npy bytes) and members name -> .npy bytes."""
    entries = [{"name": "meta.json.npy", "data": meta_npy(meta() if m is None else m)}]
    members = members or {"params/w": W}
    entries += [{"name": k + ".npy", "data": v} for k, v in members.items()]
    return zip_bytes(entries)


def good_checkpoint():
    opt = od.SGD({"w": od.tensor([1.0, 2.0], dtype="float32"), "b": od.tensor(np.zeros((2, 3)), dtype="float32")})
    opt.step({"w": od.tensor([1.0, 1.0], dtype="float32")})
    fd, tmp = tempfile.mkstemp(suffix=".npz")
    os.close(fd)
    try:
        od.save_checkpoint(tmp, opt.params, optimizer=opt, metadata={"epoch": 3})
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)


GOOD = good_checkpoint()


def _overlapping():
    """One real 1 MiB member and 2047 more central-directory entries (other names) pointing at it."""
    big = npy(np.zeros(2**18, np.float32))
    first = {"name": "meta.json.npy", "data": meta_npy(meta())}
    offset = 30 + len(first["name"]) + len(first["data"])
    entries = [first, {"name": "params/w.npy", "data": big}]
    entries += [{"name": f"params/w{i}.npy", "data": big, "no_local": True, "offset": offset} for i in range(2047)]
    return zip_bytes(entries)


def _renamed(entries_name):
    return zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())}, {"name": entries_name, "data": W}])


def _slot_meta(**opt):
    o = {"kind": "sgd", "settings": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}, "steps": 1}
    o.update(opt)
    return meta(optimizer=o)


def _raw(m, **values):
    """``m`` as JSON text with each string ``"KEY"`` replaced by the raw JSON ``values[KEY]`` (1e400...)."""
    text = json.dumps(m)
    for key, raw in values.items():
        text = text.replace(json.dumps(key), raw)
    return text


def _member_end(data, name):
    """Offset just past member ``name``'s bytes in zip ``data``."""
    import zipfile

    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    name_len, extra_len = struct.unpack("<2H", data[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size


def _flip(data, index):
    b = bytearray(data)
    b[index] ^= 0x55
    return bytes(b)


CHECKPOINTS = {
    # whole files
    "empty-file": (lambda: b"", "not a readable .npz"),
    "not-a-zip": (lambda: b"this is plain text, not a zip archive\n" * 10, "not a readable .npz"),
    "json-instead-of-zip": (lambda: json.dumps(meta()).encode(), "not a readable .npz"),
    "wrong-local-magic": (lambda: GOOD.replace(b"PK\x03\x04", b"PX\x03\x04", 1), "Bad magic"),
    "wrong-eocd-magic": (lambda: GOOD.replace(b"PK\x05\x06", b"PK\x05\x07"), "not a readable .npz"),
    "truncated-10%": (lambda: GOOD[: len(GOOD) // 10], "not a readable .npz"),
    "truncated-50%": (lambda: GOOD[: len(GOOD) // 2], "not a readable .npz"),
    "truncated-last-byte": (lambda: GOOD[:-1], "not a readable .npz"),
    "truncated-member-data": (lambda: ckpt(**{"params/w": W[:-3]}), "holds"),
    "bit-flip-in-array-data": (lambda: _flip(GOOD, _member_end(GOOD, "params/w.npy") - 2), "CRC"),
    "bit-flip-in-meta-json": (lambda: _flip(GOOD, GOOD.index(b'"epoch"') + 2), "CRC"),
    # size bombs
    "deflate-bomb-2GiB": (None, "compression method 8"),  # built once, in the bombs fixture
    "stored-size-2GiB-declared": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                                     {"name": "params/w.npy", "data": W, "file_size": 2 * GiB,
                                                      "compress_size": 2 * GiB}]), "past the end"),
    "sizes-disagree": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                          {"name": "params/w.npy", "data": W, "file_size": 2 * GiB}]),
                       "declares 2147483648 bytes stored in"),
    "overlapping-entries-2GiB": (_overlapping, "the members declare more bytes"),
    "npy-header-shape-2GiB": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (2**29,))) + b"\0" * 8}),
                              "header declares shape [536870912] float32 (2147483648 bytes)"),
    "npy-header-shape-10^12": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (10**6, 10**6)))}),
                               "header declares shape [1000000, 1000000]"),
    "120000-zip-entries": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())}] + [
        {"name": f"params/p{i}.npy", "no_local": True, "offset": 0} for i in range(120000)], count=1),
        "has about 120001 zip entries; allowed: at most 100000"),
    "npy-header-length-4GiB": (lambda: ckpt(**{"params/w": npy_header("{}", version=2, length=2**32 - 1)}),
                               ".npy header of 4294967295 bytes"),
    # .npy headers
    "npy-wrong-magic": (lambda: ckpt(**{"params/w": b"\x93NUMPX" + W[6:]}), "bad magic"),
    "npy-version-9": (lambda: ckpt(**{"params/w": b"\x93NUMPY\x09\x00" + W[8:]}), "format version 9"),
    "npy-header-code": (lambda: ckpt(**{"params/w": npy_header("__import__('os').system('echo pwned')")}),
                        "not a literal"),
    "npy-header-nested": (lambda: ckpt(**{"params/w": npy_header("(" * 5000 + ")" * 5000)}), "not a literal"),
    "npy-header-not-a-dict": (lambda: ckpt(**{"params/w": npy_header("[1, 2, 3]")}), "allowed: a dict of descr"),
    "object-dtype": (lambda: ckpt(**{"params/w": npy(np.array([object(), 1], dtype=object))}),
                     "pickled object arrays are refused"),
    "pickled-array-as-float": (lambda: ckpt(**{"params/w": npy(np.array([{"x": 1}, 2], dtype=object))
                                              .replace(b"'|O'", b"'<f4'")}), "header declares"),
    "structured-dtype-list": (lambda: ckpt(**{"params/w": npy(np.zeros(2, [("a", "<f4")]))}),
                              "no structured or object dtypes"),
    "structured-dtype-string": (lambda: ckpt(**{"params/w": npy_header(header_of("f4,f4", (1,))) + b"\0" * 8}),
                                "allowed: ['float16', 'float32', 'float64']"),
    "unicode-dtype": (lambda: ckpt(**{"params/w": npy(np.array(["ab", "cd"]))}), "allowed: ['float16'"),
    "not-a-dtype": (lambda: ckpt(**{"params/w": npy_header(header_of("<q9", (2,)))}), "is not a dtype"),
    "negative-dim": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (-1,)))}), "dimension -1"),
    "bool-dim": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (True,))) + b"\0" * 4}),
                 "dimension True"),
    "rank-40": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (1,) * 40)) + b"\0" * 4}),
                "at most 32 ints"),
    "fortran-order-not-bool": (lambda: ckpt(**{"params/w": npy_header(
        "{'descr': '<f4', 'fortran_order': 'yes', 'shape': (2,), }") + b"\0" * 8}), "fortran_order 'yes'"),
    # zip directory
    "duplicate-members": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                             {"name": "params/w.npy", "data": W},
                                             {"name": "params/w.npy", "data": npy(np.zeros(2, np.float32))}]),
                          "appears twice"),
    "member-dotdot": (lambda: _renamed("../../evil.npy"), "without empty, '.' or '..' components"),
    "member-inner-dotdot": (lambda: _renamed("params/../../w.npy"), "'..' components"),
    "member-absolute": (lambda: _renamed("/etc/passwd.npy"), "relative names"),
    "member-drive": (lambda: _renamed("C:/w.npy"), "relative names"),
    "member-backslash": (lambda: _renamed("params\\..\\w.npy"), "relative names"),
    "member-not-npy": (lambda: _renamed("params/w.sh"), "names ending in .npy"),
    "member-directory": (lambda: _renamed("params/"), "names ending in .npy"),
    "local-name-differs": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                              {"name": "params/w.npy", "data": W, "local_name": "params/x.npy"}]),
                           "differ"),
    "encrypted-member": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                            {"name": "params/w.npy", "data": W, "flags": 1}]), "encrypted"),
    "unknown-compression": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                               {"name": "params/w.npy", "data": W, "method": 99}]),
                            "compression method 99"),
    "offset-past-end": (lambda: zip_bytes([{"name": "meta.json.npy", "data": meta_npy(meta())},
                                           {"name": "params/w.npy", "data": W, "no_local": True,
                                            "offset": 10**6}]), "past the end"),
    # meta.json
    "no-meta": (lambda: zip_bytes([{"name": "params/w.npy", "data": W}]), "has no meta.json"),
    "meta-float-array": (lambda: ckpt(npy(np.zeros(4, np.float32))), "allowed: ['uint8']"),
    "meta-2d": (lambda: ckpt(npy(np.zeros((2, 2), np.uint8))), "allowed: UTF-8 bytes"),
    "meta-not-utf8": (lambda: ckpt(b"\xff\xfe{}"), "not UTF-8"),
    "meta-not-json": (lambda: ckpt("{nope"), "not valid JSON"),
    "meta-deeply-nested": (lambda: ckpt('{"metadata": ' + "[" * 100000 + "]" * 100000 + "}"), "nested 100001 deep"),
    "meta-nested-strings-are-fine-but-depth-is-not": (lambda: ckpt(json.dumps(meta(metadata={
        "a": "[{[{\\\"" * 1000, "b": "X"})).replace('"X"', "[" * 200 + "]" * 200)), "nested 202 deep"),
    "meta-huge-int": (lambda: ckpt('{"format": ' + "9" * 5000 + "}"), "not valid JSON"),
    "meta-backslash-quote-runs": (lambda: ckpt('{"metadata": "' + '\\"' * 10**6), "not valid JSON"),
    "meta-a-million-containers": (lambda: ckpt(meta(metadata={"x": [[]] * 10**6})),
                                  "JSON has 1000006 arrays and objects; allowed: at most 1000000 "
                                  "(opdispatch.files.MAX_JSON_CONTAINERS)"),
    "meta-duplicate-key": (lambda: ckpt('{"format": "opdispatch-checkpoint", "format": "x"}'), "duplicate key"),
    "meta-top-level-list": (lambda: ckpt("[1, 2]"), "not an opdispatch checkpoint"),
    "meta-wrong-format": (lambda: ckpt(meta(format="pickle")), "not an opdispatch checkpoint"),
    "meta-version-2": (lambda: ckpt(meta(version=2)), "has version 2"),
    "meta-version-string": (lambda: ckpt(meta(version="1")), "has version '1'"),
    "meta-version-true": (lambda: ckpt(meta(version=True)), "has version True"),
    "meta-unknown-key": (lambda: ckpt(meta(code="os.system")), "has keys"),
    "meta-missing-key": (lambda: ckpt({k: v for k, v in meta().items() if k != "metadata"}), "has keys"),
    "arrays-a-list": (lambda: ckpt(meta(arrays=["params/w"])), "'arrays': is list"),
    "arrays-entry-not-dict": (lambda: ckpt(meta(arrays={"params/w": [2]})), "allowed: an object with 'shape'"),
    "arrays-shape-nan": (lambda: ckpt(meta(arrays={"params/w": {"shape": [float("nan")], "dtype": "float32"}})),
                         "dimension nan"),
    "arrays-shape-negative": (lambda: ckpt(meta(arrays={"params/w": {"shape": [-2], "dtype": "float32"}})),
                              "dimension -2"),
    "arrays-shape-float": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2.0], "dtype": "float32"}})),
                           "dimension 2.0"),
    "arrays-shape-string": (lambda: ckpt(meta(arrays={"params/w": {"shape": "2", "dtype": "float32"}})),
                            "shape '2'"),
    "arrays-shape-absurd": (lambda: ckpt(meta(arrays={"params/w": {"shape": [10**12], "dtype": "float32"}})),
                            "meta.json says"),
    "arrays-dtype-object": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2], "dtype": "object"}})),
                            "dtype 'object'"),
    "arrays-dtype-list": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2], "dtype": ["float32"]}})),
                          "dtype ['float32']"),
    "arrays-dtype-disagrees": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2], "dtype": "float64"}})),
                               "meta.json says"),
    "arrays-unknown-group": (lambda: ckpt(meta(arrays={"code/w": {"shape": [2], "dtype": "float32"}}),
                                          **{"code/w": W}), "unknown entry"),
    "arrays-missing-member": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2], "dtype": "float32"},
                                                        "params/v": {"shape": [2], "dtype": "float32"}})),
                              "missing ['params/v']"),
    "arrays-extra-member": (lambda: ckpt(meta(), **{"params/w": W, "params/x": W}), "unexpected ['params/x']"),
    "int-params": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2], "dtype": "int64"}}),
                                **{"params/w": npy(np.array([1, 2]))}), "dtype 'int64'"),
    "optimizer-a-list": (lambda: ckpt(meta(optimizer=["sgd"])), "is not understood"),
    "optimizer-unknown-kind": (lambda: ckpt(meta(optimizer={"kind": "os.system", "settings": {}, "steps": 0})),
                               "kind 'os.system' is not understood"),
    "optimizer-kind-unhashable": (lambda: ckpt(meta(optimizer={"kind": ["sgd"], "settings": {}, "steps": 0})),
                                  "kind ['sgd']"),
    "optimizer-settings-string": (lambda: ckpt(_slot_meta(settings={"lr": "0.1"})), "settings {'lr': '0.1'}"),
    "optimizer-settings-list": (lambda: ckpt(_slot_meta(settings=[0.1])), "settings [0.1]"),
    "optimizer-settings-unknown": (lambda: ckpt(_slot_meta(settings={"lr": 0.1, "exec": 1})), "does not fit"),
    "optimizer-settings-negative-lr": (lambda: ckpt(_slot_meta(settings={"lr": -1.0})), "does not fit"),
    "optimizer-steps-negative": (lambda: ckpt(_slot_meta(steps=-1)), "steps -1"),
    "optimizer-steps-float": (lambda: ckpt(_slot_meta(steps=1.5)), "steps 1.5"),
    "optimizer-steps-bool": (lambda: ckpt(_slot_meta(steps=True)), "steps True"),
    "optimizer-steps-2^64": (lambda: ckpt(_slot_meta(steps=2**64)), "steps 18446744073709551616; allowed: an int in "
                                                                   "[0, 9223372036854775807]"),
    "optimizer-lr-10^400": (lambda: ckpt(_slot_meta(settings={"lr": 10**400})),
                            "does not fit: SGD: argument 'lr' got an int of 1329 bits, too big for a float"),
    "optimizer-momentum-10^400": (lambda: ckpt(_slot_meta(settings={"lr": 0.1, "momentum": -10**400})),
                                  "argument 'momentum' got an int of 1329 bits"),
    "optimizer-lr-1e400": (lambda: ckpt(_raw(_slot_meta(settings={"lr": "X"}), X="1e400")), "'lr' got inf"),
    "optimizer-beta-minus-1e400": (lambda: ckpt(_raw(_slot_meta(kind="adam", settings={"beta1": "X"}),
                                                     X="-1e400")), "'beta1' got -inf"),
    "arrays-shape-2^63": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2**63], "dtype": "float32"}})),
                          "shape [9223372036854775808] declares over 281474976710656 elements"),
    "arrays-shape-2^40-by-2^40": (lambda: ckpt(meta(arrays={"params/w": {"shape": [2**40, 2**40],
                                                                          "dtype": "float32"}})),
                                  "allowed: at most 281474976710656 (opdispatch.files.MAX_ELEMENTS)"),
    "arrays-shape-0-by-2^70": (lambda: ckpt(meta(arrays={"params/w": {"shape": [0, 2**70], "dtype": "float32"}}),
                                            **{"params/w": npy_header(header_of("<f4", (0, 2**70)))}),
                               "shape [0, 1180591620717411303424] declares over"),
    "npy-header-0-by-2^62": (lambda: ckpt(meta(arrays={"params/w": {"shape": [0, 2**62], "dtype": "float32"}}),
                                          **{"params/w": npy_header(header_of("<f4", (0, 2**62)))}),
                             "(opdispatch.files.MAX_ELEMENTS)"),
    "npy-header-only-0-by-2^70": (lambda: ckpt(**{"params/w": npy_header(header_of("<f4", (0, 2**70)))}),
                                  "array 'params/w': shape [0, 1180591620717411303424] declares over"),
    "optimizer-slot-unknown-param": (lambda: ckpt(dict(_slot_meta(), arrays={
        "params/w": {"shape": [2], "dtype": "float32"}, "optimizer/velocity/zz": {"shape": [2], "dtype": "float32"}}),
        **{"params/w": W, "optimizer/velocity/zz": W}), "unknown state entry"),
    "optimizer-slot-bad-key": (lambda: ckpt(dict(_slot_meta(), arrays={
        "params/w": {"shape": [2], "dtype": "float32"}, "optimizer/velocity": {"shape": [2], "dtype": "float32"}}),
        **{"params/w": W, "optimizer/velocity": W}), "unknown entry"),
    "metadata-a-list": (lambda: ckpt(meta(metadata=[1, 2])), "'metadata': is list"),
}


def _refuse(load, path, error, fragments, *, names=None):
    """Load in a thread (a blocking open would fail the test, not hang it); assert the typed error,
    its message naming the file and the fault, the time and the traced peak memory."""
    result = {}

    def run():
        tracemalloc.start()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        try:
            load(path)
        except BaseException as exc:  # noqa: BLE001 - judged below
            result["exc"] = exc
        result["seconds"] = time.perf_counter() - t0
        result["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"loading {path} blocked"
    exc = result.get("exc")
    assert isinstance(exc, error), f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
    message = str(exc)
    for name in names or [path]:
        assert str(name) in message, f"the message does not name {name}: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert result["seconds"] < TIME_LIMIT_S, f"took {result['seconds']:.3f} s"
    assert result["peak"] < PEAK_LIMIT, f"peak traced memory {result['peak']} bytes"
    return exc, result


@pytest.fixture(scope="module")
def bombs():
    n = 2 * GiB
    header = npy_header(header_of("<f4", (n // 4,)).ljust(117) + "\n")
    data, crc = deflate_bomb(header, n)
    member = {"data": data, "method": 8, "crc": crc, "file_size": len(header) + n}
    m = meta(arrays={"params/w": {"shape": [n // 4], "dtype": "float32"}})
    return {"deflate-bomb-2GiB": zip_bytes([{"name": "meta.json.npy", "data": meta_npy(m)},
                                            dict(member, name="params/w.npy")]),
            "overlapping-entries-2GiB": _overlapping(),
            "graph-npz-deflate-bomb-2GiB": zip_bytes([dict(member, name=f"c{C}.npy")])}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_hostile_checkpoints_are_refused(tmp_path, case, bombs):
    make, fragment = CHECKPOINTS[case]
    path = tmp_path / "hostile.npz"
    path.write_bytes(bombs[case] if case in bombs else make())
    _refuse(od.load_checkpoint, str(path), od.CheckpointError, [fragment])


def test_there_are_at_least_30_hostile_checkpoints():
    assert len(CHECKPOINTS) >= 30


def test_the_deflate_bomb_really_is_one(bombs):
    """Sanity of the crafted bomb: 2 MiB on disk, a 2 GiB array inside (checked with a bounded read)."""
    import zipfile

    data = bombs["deflate-bomb-2GiB"]
    assert len(data) < 2.5 * 2**20
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("params/w.npy")
        assert info.file_size > 2 * GiB
        with zf.open(info) as member:
            assert member.read(6) == b"\x93NUMPY"


def test_special_files_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    link = tmp_path / "link.npz"
    link.symlink_to(fifo)
    (tmp_path / "dir.npz").mkdir()
    for path, what in ((fifo, "a FIFO"), (link, "a FIFO"), (tmp_path / "dir.npz", "a directory"),
                       ("/dev/zero", "a character device")):
        _refuse(od.load_checkpoint, str(path), od.CheckpointError, [f"is {what}", "allowed: a regular file"])
    _refuse(od.load_checkpoint, str(tmp_path / "nowhere.npz"), od.CheckpointError, ["no file"])


def test_a_symlink_to_a_regular_checkpoint_loads(tmp_path):
    (tmp_path / "real.npz").write_bytes(GOOD)
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")
    ck = od.load_checkpoint(tmp_path / "link.npz")
    assert ck.metadata == {"epoch": 3} and ck.optimizer.steps == 1


def test_the_size_limit_is_documented_and_can_be_raised(tmp_path, monkeypatch):
    import opdispatch.checkpoint as ckpt_module

    path = tmp_path / "c.npz"
    path.write_bytes(GOOD)
    _refuse(lambda p: od.load_checkpoint(p, max_bytes=100), str(path), od.CheckpointError,
            [f"is {len(GOOD)} bytes, over the limit of 100 bytes"])
    monkeypatch.setattr(ckpt_module, "MAX_BYTES", 100)
    _refuse(od.load_checkpoint, str(path), od.CheckpointError, ["over the limit of 100 bytes"])
    assert od.load_checkpoint(path, max_bytes=len(GOOD)).metadata == {"epoch": 3}
    with pytest.raises(od.CheckpointError, match="'max_bytes' got -1"):
        od.load_checkpoint(path, max_bytes=-1)


def test_the_entry_limit_counts_zip64_directories_and_can_be_raised(tmp_path, monkeypatch):
    import zipfile

    import opdispatch.files as files

    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as zf:  # over 65535 entries: zipfile writes a zip64 end record
        zf.writestr("meta.json.npy", meta_npy(meta()))
        for i in range(66000):
            zf.writestr(f"params/p{i}.npy", W)
    t0 = time.perf_counter()
    with pytest.raises(od.CheckpointError, match="arrays do not match meta.json"):  # under the limit: parsed
        od.load_checkpoint(path)
    assert time.perf_counter() - t0 < 5 * TIME_LIMIT_S
    monkeypatch.setattr(files, "MAX_MEMBERS", 1000)
    _refuse(od.load_checkpoint, str(path), od.CheckpointError, ["has about 66001 zip entries; allowed: at most 1000"])
    monkeypatch.setattr(files, "MAX_MEMBERS", 2)
    _refuse(od.load_checkpoint, str(_write(tmp_path / "few.npz", GOOD)), od.CheckpointError, ["at most 2"])


def test_every_single_byte_corruption_is_refused_or_harmless(tmp_path):
    """Flip each byte of a real checkpoint: the load is a CheckpointError or gives the same data
    (a flip in a zip field nobody reads, such as a timestamp)."""
    want = od.load_checkpoint(_write(tmp_path / "good.npz", GOOD))
    path = tmp_path / "flipped.npz"
    worst = 0.0
    refused = 0
    for i in range(len(GOOD)):
        path.write_bytes(_flip(GOOD, i))
        t0 = time.perf_counter()
        try:
            ck = od.load_checkpoint(path)
        except od.CheckpointError as exc:
            refused += 1
            assert str(path) in str(exc)
        else:
            assert ck.metadata == want.metadata and ck.optimizer.steps == want.optimizer.steps
            for k in want.params:
                np.testing.assert_array_equal(ck.params[k].numpy(), want.params[k].numpy())
        worst = max(worst, time.perf_counter() - t0)
    assert refused > len(GOOD) // 2 and worst < TIME_LIMIT_S


def _write(path, data):
    path.write_bytes(data)
    return path


def test_big_endian_and_fortran_arrays_still_load(tmp_path):
    """Not hostile, just foreign: a big-endian or Fortran-ordered float array is read correctly."""
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    m = meta(arrays={"params/w": {"shape": [2, 3], "dtype": "float32"}})
    for arr in (w.astype(">f4"), np.asfortranarray(w)):
        path = _write(tmp_path / "c.npz", ckpt(m, **{"params/w": npy(arr)}))
        np.testing.assert_array_equal(od.load_checkpoint(path).params["w"].numpy(), w)


BOMB_SCRIPT = textwrap.dedent("""
    import resource, sys
    import opdispatch as od
    od.devices(), od.tensor([1.0])  # the plugins loaded: what follows is the loaders' own
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    failures = []
    for kind, path in zip(sys.argv[1::2], sys.argv[2::2]):
        load = od.load_checkpoint if kind == "ckpt" else od.load_graph
        try:
            load(path)
            failures.append(path + " loaded")
        except (od.CheckpointError, od.GraphFormatError):
            pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, failures)
""")


def test_size_bombs_stay_small_in_a_fresh_process(tmp_path, bombs):
    """The same bombs in a fresh interpreter: they raise its peak RSS by far less than 2 GiB."""
    args = []
    for name, data in [*bombs.items(), ("header", CHECKPOINTS["npy-header-shape-2GiB"][0]()),
                       ("stored", CHECKPOINTS["stored-size-2GiB-declared"][0]())]:
        args += ["ckpt", str(_write(tmp_path / f"{name}.npz", data))]
    args += ["graph", _v1_pair(tmp_path, "bomb1", npz=bombs["graph-npz-deflate-bomb-2GiB"]),
             "graph", _v1_pair(tmp_path, "bomb2", npz=V1_NPZ["npz-header-2GiB"][0])]
    out = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_kib, failures = out.stdout.split(" ", 1)
    assert failures.strip() == "[]"
    assert int(grown_kib) * 1024 < 64 * 2**20, f"peak RSS grew by {int(grown_kib) // 1024} MiB"


# -- graphs ---------------------------------------------------------------------------------------------

def _graph_doc():
    rng = np.random.default_rng(0)
    w = od.tensor(rng.standard_normal((4, 3, 3, 3)).astype("float32"))

    def net(x):
        return od.tanh(od.conv2d(x, w, padding="SAME"))

    g = od.function(net).graph(od.tensor(rng.standard_normal((1, 3, 5, 5)).astype("float32")))
    from opdispatch.graph.serialize import to_dict

    return g, to_dict(g)


GRAPH, DOC = _graph_doc()
CONST = GRAPH.constants and next(iter(GRAPH.constants))
NODE = next(i for i, n in enumerate(DOC["nodes"]) if n["op"] == "conv2d")


def doc(change=None):
    d = json.loads(json.dumps(DOC))
    if change is not None:
        change(d)
    return json.dumps(d).encode()


def _set(path_keys, value):
    def change(d):
        target = d
        for k in path_keys[:-1]:
            target = target[k]
        target[path_keys[-1]] = value
    return change


def _v1_pair(tmp_path, name, npz=None, npz_change=None):
    """A version 1 JSON + .npz pair in tmp_path; ``npz`` replaces the .npz bytes (None: none written
    when npz_change is 'missing')."""
    d = json.loads(json.dumps(DOC))
    del d["data"]
    d["version"] = 1
    jpath = tmp_path / f"{name}.json"
    jpath.write_text(json.dumps(d))
    npath = tmp_path / f"{name}.npz"
    if npz is not None:
        npath.write_bytes(npz)
    elif npz_change != "missing":
        np.savez(npath, **{f"c{c}": a for c, a in GRAPH.constants.items()})
    return str(jpath)


VID = str(DOC["nodes"][NODE]["outputs"][0])
IN0 = str(DOC["inputs"][0])
C = str(CONST)


GRAPHS = {
    # whole files
    "empty-file": (lambda: b"", "not valid JSON"),
    "binary-garbage": (lambda: bytes(range(256)) * 4, "not UTF-8"),
    "zip-instead-of-json": (lambda: GOOD, "not UTF-8"),
    "truncated-half": (lambda: doc()[: len(doc()) // 2], "not valid JSON"),
    "truncated-last-byte": (lambda: doc()[:-1], "not valid JSON"),
    "deeply-nested": (lambda: b"[" * 200000 + b"]" * 200000, "JSON nested 200000 deep; allowed: at most 100"),
    "deeply-nested-attrs": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].update(stride=json.loads(
        "[" * 150 + "1" + "]" * 150))), "JSON nested"),
    "duplicate-key": (lambda: b'{"format": "opdispatch.graph", "format": "x"}', "duplicate key 'format'"),
    "huge-int": (lambda: b'{"version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "backslash-quote-runs": (lambda: b'\\"' * 10**6, "not valid JSON"),
    "open-strings-in-arrays": (lambda: b'["' * 200000, "JSON nested 100000 deep"),
    "ten-million-values": (lambda: b"[" + b"0," * 10**7 + b"0]",
                           "JSON has about 10000002 values; allowed: at most 10000000 "
                           "(opdispatch.files.MAX_JSON_VALUES)"),
    "top-level-list": (lambda: b"[]", "not an opdispatch graph"),
    "wrong-format": (lambda: doc(_set(["format"], "pickle")), "not an opdispatch graph"),
    "version-4": (lambda: doc(_set(["version"], 4)), "has version 4; allowed: 1, 2, 3"),
    "version-3-without-digest": (lambda: doc(_set(["version"], 3)), "sha256: got None; allowed: the 64 lower-case hex"),
    "version-3-digest-not-hex": (lambda: doc(lambda d: d.update(version=3, sha256="Z" * 64)), "sha256: got 'ZZZZ"),
    "version-3-digest-of-other-content": (lambda: doc(lambda d: d.update(version=3, sha256=_digest(dict(
        d, name="other")))), "sha256: does not match the file's content"),
    "version-3-content-changed-after-digest": (lambda: doc(lambda d: (d.update(version=3, sha256=_digest(d)),
                                                                      d["values"][C].update(shape=[2, 4, 3, 3]))),
                                               "sha256: does not match"),
    "version-true": (lambda: doc(_set(["version"], True)), "has version True"),
    "version-1-without-npz": (lambda: doc(_set(["version"], 1)), "no such file"),
    "name-not-str": (lambda: doc(_set(["name"], ["x"])), "name: got list"),
    # values
    "values-a-list": (lambda: doc(_set(["values"], [])), "values: allowed: an object"),
    "value-id-word": (lambda: doc(lambda d: d["values"].update(abc=d["values"][IN0])), "id 'abc'"),
    "value-id-negative": (lambda: doc(lambda d: d["values"].update({"-1": d["values"][IN0]})), "id '-1'"),
    "value-id-superscript": (lambda: doc(lambda d: d["values"].update({"\u00b2": d["values"][IN0]})), "id '²'"),
    "value-id-huge": (lambda: doc(lambda d: d["values"].update({"9" * 12: d["values"][IN0]})), "integers 0 to"),
    "value-id-leading-zeros": (lambda: doc(lambda d: d["values"].update({"007": d["values"][IN0]})),
                               "id '007'; allowed: integers 0 to 2147483647 written in decimal without sign, spaces "
                               "or leading zeros"),
    "value-id-respelled": (lambda: doc(lambda d: d["values"].update({"0" + IN0: {**d["values"][IN0], "shape": [9]}})),
                           f"id '0{IN0}'"),
    "value-id-double-zero": (lambda: doc(lambda d: d["values"].update({"00": d["values"][IN0]})), "id '00'"),
    "value-id-plus": (lambda: doc(lambda d: d["values"].update({"+1": d["values"][IN0]})), "id '+1'"),
    "value-id-space": (lambda: doc(lambda d: d["values"].update({" 1": d["values"][IN0]})), "id ' 1'"),
    "value-id-underscore": (lambda: doc(lambda d: d["values"].update({"1_0": d["values"][IN0]})), "id '1_0'"),
    "value-id-arabic-digits": (lambda: doc(lambda d: d["values"].update({"\u0661": d["values"][IN0]})), "id '١'"),
    "value-not-object": (lambda: doc(_set(["values", IN0], [1, 2])), "allowed: an object with shape"),
    "shape-not-list": (lambda: doc(_set(["values", IN0, "shape"], "1,3,5,5")), "allowed: a list"),
    "shape-nan": (lambda: doc(_set(["values", IN0, "shape"], [float("nan"), 3, 5, 5])), "dimension nan"),
    "shape-negative": (lambda: doc(_set(["values", IN0, "shape"], [-1, 3, 5, 5])), "dimension -1"),
    "shape-float": (lambda: doc(_set(["values", IN0, "shape"], [1.5, 3, 5, 5])), "dimension 1.5"),
    "shape-bool": (lambda: doc(_set(["values", IN0, "shape"], [True, 3, 5, 5])), "dimension True"),
    "shape-10^12-elements": (lambda: doc(_set(["values", IN0, "shape"], [10**6, 10**6])),
                             "is 4000000000000 bytes; allowed: at most"),
    "shape-rank-40": (lambda: doc(_set(["values", IN0, "shape"], [1] * 40)), "at most 32 ints"),
    "shape-2^63": (lambda: doc(_set(["values", IN0, "shape"], [2**63])), "declares over 281474976710656 elements"),
    "shape-2^40-by-2^40": (lambda: doc(_set(["values", IN0, "shape"], [2**40, 2**40])),
                           "(opdispatch.files.MAX_ELEMENTS)"),
    "shape-0-by-2^62": (lambda: doc(_set(["values", IN0, "shape"], [0, 2**62, 5, 5])), "declares over"),
    "constant-0-by-2^70": (lambda: doc(lambda d: (d["values"][C].update(shape=[0, 2**70]), d["data"].update({C: ""}))),
                           f"value '{C}': shape [0, 1180591620717411303424] declares over 281474976710656 elements"),
    "constant-0-by-2^62": (lambda: doc(lambda d: (d["values"][C].update(shape=[0, 2**62]), d["data"].update({C: ""}))),
                           "MAX_ELEMENTS"),
    "dtype-object": (lambda: doc(_set(["values", IN0, "dtype"], "object")), "dtype 'object'"),
    "dtype-list": (lambda: doc(_set(["values", IN0, "dtype"], ["float32"])), "dtype ['float32']"),
    "dtype-missing": (lambda: doc(lambda d: d["values"][IN0].pop("dtype")), "dtype None"),
    "device-int": (lambda: doc(_set(["values", IN0, "device"], 5)), "device 5"),
    "device-bad-name": (lambda: doc(_set(["values", IN0, "device"], "no such!device")), "device 'no such!device'"),
    "device-huge-index": (lambda: doc(_set(["values", IN0, "device"], "numpy:" + "9" * 5000)), "device 'numpy:999"),
    # inputs, constants, data
    "inputs-not-list": (lambda: doc(_set(["inputs"], 0)), "inputs: got int"),
    "input-string-id": (lambda: doc(_set(["inputs"], [IN0])), "inputs: got '"),
    "input-undeclared": (lambda: doc(_set(["inputs"], [12345])), "value 12345 is not declared"),
    "input-twice": (lambda: doc(_set(["inputs"], [int(IN0), int(IN0)])), "defined twice"),
    "constants-not-list": (lambda: doc(_set(["constants"], {"a": 1})), "constants: got dict"),
    "data-missing": (lambda: doc(lambda d: d.pop("data")), "data: holds 'NoneType'"),
    "data-extra-key": (lambda: doc(lambda d: d["data"].update({"77": "AAAA"})), "data: holds"),
    "data-not-str": (lambda: doc(_set(["data", C], [1, 2])), f"constant {C}: data is list"),
    "data-too-short": (lambda: doc(_set(["data", C], DOC["data"][C][:-8])), "base64 characters"),
    "data-too-long": (lambda: doc(_set(["data", C], DOC["data"][C] + "AAAA")), "base64 characters"),
    "data-not-base64": (lambda: doc(_set(["data", C], "!" * len(DOC["data"][C]))), "not base64"),
    "constant-declares-2GiB": (lambda: doc(_set(["values", C, "shape"], [2**29])), "base64 characters; a [536870912]"),
    # nodes
    "nodes-not-list": (lambda: doc(_set(["nodes"], {"0": {}})), "nodes: got dict"),
    "node-not-object": (lambda: doc(_set(["nodes", NODE], "conv2d")), f"node {NODE}: allowed: an object"),
    "op-not-str": (lambda: doc(_set(["nodes", NODE, "op"], ["conv2d"])), "op ['conv2d']"),
    "op-unknown": (lambda: doc(_set(["nodes", NODE, "op"], "__import__('os').system")), "unknown op"),
    "attrs-not-object": (lambda: doc(_set(["nodes", NODE, "attrs"], [1])), "attrs: allowed: an object"),
    "attr-object": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].update(stride={"a": 1})), "attrs: got dict"),
    "attr-string": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].update(stride="big")), "does not check"),
    "attr-zero-stride": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].update(stride=[0, 0])), "does not check"),
    "attr-huge-padding": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].update(
        padding=[[10**15, 10**15], [1, 1]])), "does not check"),
    "attr-missing": (lambda: doc(lambda d: d["nodes"][NODE]["attrs"].pop("stride")), "takes inputs"),
    "node-inputs-not-list": (lambda: doc(_set(["nodes", NODE, "inputs"], 0)), "inputs: got int"),
    "node-input-later": (lambda: doc(_set(["nodes", NODE, "inputs"], [int(VID), None, None])), "before it is defined"),
    "node-device-missing": (lambda: doc(lambda d: d["nodes"][NODE].pop("device")), "device None"),
    "node-sources-bad": (lambda: doc(_set(["nodes", NODE, "sources"], [["f.py", "x", "g"]])), "source line"),
    "node-fused-from-bad": (lambda: doc(_set(["nodes", NODE, "fused_from"], [1])), "fused_from"),
    "node-output-shape-lies": (lambda: doc(_set(["values", VID, "shape"], [1, 4, 2, 2])), "do not match"),
    "outputs-undeclared": (lambda: doc(_set(["outputs"], [424242])), "not declared"),
    "copy-without-device": (lambda: doc(lambda d: d["nodes"][NODE].update(op="copy", attrs={})), "a copy takes"),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_hostile_graph_files_are_refused(tmp_path, case):
    make, fragment = GRAPHS[case]
    path = tmp_path / "hostile.json"
    path.write_bytes(make())
    _refuse(od.load_graph, str(path), od.GraphFormatError, [fragment])


def test_there_are_at_least_30_hostile_graph_files():
    assert len(GRAPHS) >= 30


def test_the_untampered_document_loads(tmp_path):
    path = _write(tmp_path / "g.json", doc())
    x = od.tensor(np.ones((1, 3, 5, 5)), dtype="float32")
    np.testing.assert_array_equal(od.load_graph(str(path))(x).numpy(), GRAPH(x).numpy())


V1_NPZ = {  # the .npz bytes, what the message says, and which file it names
    "npz-missing": (None, "no such file", "npz"),
    "npz-not-a-zip": (b"not a zip", "not a readable .npz", "npz"),
    "npz-empty": (b"", "not a readable .npz", "npz"),
    "npz-wrong-shape": (zip_bytes([{"name": f"c{C}.npy", "data": npy(np.zeros(3, np.float32))}]),
                        f"constant {C}: array is shape (3,)", "json"),
    "npz-wrong-dtype": (zip_bytes([{"name": f"c{C}.npy", "data": npy(np.zeros((4, 3, 3, 3), np.float64))}]),
                        "dtype float64", "json"),
    "npz-lacks-the-constant": (zip_bytes([{"name": "c999.npy", "data": npy(np.zeros(1, np.float32))}]),
                               "does not list", "json"),
    "npz-extra-array": (zip_bytes([{"name": f"c{C}.npy", "data": npy(GRAPH.constants[CONST])},
                                   {"name": "c999.npy", "data": npy(np.zeros(1, np.float32))}]),
                        "does not list", "json"),
    "npz-object-array": (zip_bytes([{"name": f"c{C}.npy", "data": npy(np.array([{"x": 1}], dtype=object))}]),
                         "pickled object arrays are refused", "npz"),
    "npz-header-2GiB": (zip_bytes([{"name": f"c{C}.npy", "data": npy_header(header_of("<f4", (2**29,)))}]),
                        "header declares", "npz"),
    "npz-declared-2GiB": (zip_bytes([{"name": f"c{C}.npy", "data": W, "file_size": 2 * GiB}]), "declares", "npz"),
    "npz-dotdot-member": (zip_bytes([{"name": f"../c{C}.npy", "data": W}]), "'..' components", "npz"),
    "npz-duplicate-member": (zip_bytes([{"name": f"c{C}.npy", "data": W}, {"name": f"c{C}.npy", "data": W}]),
                             "appears twice", "npz"),
    "npz-deflated": (zip_bytes([{"name": f"c{C}.npy", "data": zlib.compress(W)[2:-4], "method": 8,
                                 "file_size": len(W), "crc": zlib.crc32(W)}]), "compression method 8", "npz"),
}


@pytest.mark.parametrize("case", list(V1_NPZ))
def test_version_1_pairs_with_a_bad_npz_are_refused(tmp_path, case):
    data, fragment, which = V1_NPZ[case]
    jpath = _v1_pair(tmp_path, "old", npz=data, npz_change="missing" if data is None else None)
    npath = jpath[:-5] + ".npz"
    names = [npath, f"the constants of {jpath}"] if which == "npz" else [jpath]
    _refuse(od.load_graph, jpath, od.GraphFormatError, [fragment], names=names)


def test_version_1_pair_special_files(tmp_path):
    jpath = _v1_pair(tmp_path, "old", npz_change="missing")
    os.mkfifo(jpath[:-5] + ".npz")
    _refuse(od.load_graph, jpath, od.GraphFormatError, ["is a FIFO"], names=[jpath[:-5] + ".npz"])
    assert od.load_graph(_v1_pair(tmp_path, "fine")).ops() == GRAPH.ops()


def test_graph_special_files_and_limits(tmp_path, monkeypatch):
    import opdispatch.graph.serialize as ser

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "link.json").symlink_to(fifo)
    (tmp_path / "dir.json").mkdir()
    for path, what in ((fifo, "a FIFO"), (tmp_path / "link.json", "a FIFO"), (tmp_path / "dir.json", "a directory")):
        _refuse(od.load_graph, str(path), od.GraphFormatError, [f"is {what}", "allowed: a regular file"])
    _refuse(od.load_graph, str(tmp_path / "nowhere.json"), od.GraphFormatError, ["no such file"])
    path = str(_write(tmp_path / "g.json", doc()))
    _refuse(lambda p: od.load_graph(p, max_bytes=1000), path, od.GraphFormatError, ["over the limit of 1000 bytes"])
    monkeypatch.setattr(ser, "MAX_BYTES", 1000)
    _refuse(od.load_graph, path, od.GraphFormatError, ["over the limit of 1000 bytes"])
    assert od.load_graph(path, max_bytes=10**6).ops() == GRAPH.ops()
    monkeypatch.setattr(ser, "MAX_VALUE_BYTES", 100)
    _refuse(lambda p: od.load_graph(p, max_bytes=10**6), path, od.GraphFormatError,
            ["allowed: at most 100 (opdispatch.graph.serialize.MAX_VALUE_BYTES)"])


def _digest(d):
    from opdispatch.graph.serialize import content_digest

    return content_digest(d)


def test_every_single_byte_corruption_of_a_saved_graph_is_refused_or_changes_nothing(tmp_path):
    """A graph as Graph.save writes it carries the SHA-256 of its content: a flipped byte anywhere is a
    GraphFormatError, or (in indentation the digest does not cover) loads the same graph. Version 2
    files, without the digest, could load as another graph (a flip inside a constant's base64)."""
    good = tmp_path / "good.json"
    GRAPH.save(str(good))
    data = good.read_bytes()
    want = json.dumps(_strip(od.load_graph(str(good))), sort_keys=True)
    path = tmp_path / "flipped.json"
    for i in range(len(data)):
        path.write_bytes(_flip(data, i))
        try:
            loaded = od.load_graph(str(path))
        except od.GraphFormatError as exc:
            assert str(path) in str(exc)
        else:
            assert json.dumps(_strip(loaded), sort_keys=True) == want, f"byte {i} changed the graph"


def _strip(graph):
    from opdispatch.graph.serialize import to_dict

    return to_dict(graph)


def test_every_single_byte_corruption_of_a_graph_is_refused_or_loads(tmp_path):
    """Flip bytes across a real graph file: each load is a GraphFormatError or a graph that checks
    (a flip inside a source file name, say) -- never another exception."""
    data = doc()
    path = tmp_path / "flipped.json"
    worst = 0.0
    step = max(1, len(data) // 1500)
    for i in range(0, len(data), step):
        path.write_bytes(_flip(data, i))
        t0 = time.perf_counter()
        try:
            od.load_graph(str(path))
        except od.GraphFormatError as exc:
            assert str(path) in str(exc)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < TIME_LIMIT_S


def test_saved_constants_round_trip_bit_exactly_for_every_dtype(tmp_path):
    from opdispatch.graph.serialize import DTYPES, from_dict, to_dict

    rng = np.random.default_rng(1)
    consts = {i: (rng.standard_normal((2, 3)) * 100).astype(dt) for i, dt in enumerate(sorted(DTYPES))}
    consts[len(consts)] = np.array([np.nan, -0.0, np.inf], np.float32)
    consts[len(consts)] = np.zeros((0, 4), np.float16)
    from opdispatch.graph import Graph, ValueInfo

    g = Graph(name="c", inputs=(), outputs=tuple(consts), nodes=(),
              values={i: ValueInfo(a.shape, a.dtype) for i, a in consts.items()}, constants=consts)
    g.save(str(tmp_path / "c.json"))
    loaded = od.load_graph(str(tmp_path / "c.json"))
    for i, a in consts.items():
        assert loaded.constants[i].dtype == a.dtype and loaded.constants[i].tobytes() == a.tobytes()
    assert from_dict(to_dict(g)).constants.keys() == consts.keys()


# -- the JSON scan: linear whatever the text, and its limits ------------------------------------------

HOSTILE_JSON = {  # the old string regex backtracked over the rest of the text from every quote: 80 KB of
    # '\\"' took it 12 s, and these 2 MB would take it hours; they are refused in milliseconds now
    "backslash-quote-runs": '\\"' * 10**6,
    "quote-backslash-runs": '"\\' * 10**6,
    "quote-then-backslashes": '"' + "\\\\" * 10**6,
    "open-strings-in-arrays": '["' * 200000,
    "escaped-quotes-never-closed": "[" + '"a\\",' * 300000,
    "odd-number-of-quotes": '"' * (2 * 10**6 + 1),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_the_json_scan_is_linear_on_hostile_text(case):
    text = HOSTILE_JSON[case]
    t0 = time.perf_counter()
    with pytest.raises(files.FileFault, match="not valid JSON|JSON nested"):
        files.loads_json(text, "JSON")
    assert time.perf_counter() - t0 < 2.0


def _true_shape(value, depth=1):
    """(depth, containers, values) of a parsed JSON value, by walking it."""
    if isinstance(value, (list, dict)):
        items = list(value.values()) + list(value) if isinstance(value, dict) else value
        parts = [_true_shape(v, depth + 1) for v in items]
        return (max([depth] + [p[0] for p in parts]), 1 + sum(p[1] for p in parts), 1 + sum(p[2] for p in parts))
    return (depth - 1, 0, 1)


def test_the_json_scan_counts_what_the_parser_builds(monkeypatch):
    """Random documents whose strings hold quotes, backslashes and brackets: the scan's depth and
    containers are exact, its values an upper bound."""
    import random

    rng = random.Random(0)
    alphabet = ['"', "\\", "[", "]", "{", "}", ",", ":", "a", "\u00e9", "\n", " "]

    def text():
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))

    def value(depth):
        kind = rng.randrange(6 if depth < 6 else 3)
        if kind == 0:
            return text()
        if kind == 1:
            return rng.choice([0, -1.5, 1e300, True, None])
        if kind == 2:
            return rng.randrange(10)
        if kind in (3, 4):
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {text(): value(depth + 1) for _ in range(rng.randrange(4))}

    docs = [value(0) for _ in range(500)]
    for doc in docs:
        for encoded in (json.dumps(doc), json.dumps(doc, ensure_ascii=False, indent=1)):
            depth, containers, values = files.json_scan(encoded)
            true_depth, true_containers, true_values = _true_shape(doc)
            assert (depth, containers) == (true_depth, true_containers), encoded
            assert values >= true_values, encoded
    # the scan reads the text a chunk at a time: strings and escapes cut by a chunk's end carry over
    texts = [json.dumps(d, ensure_ascii=False) for d in docs[:100]] + ['["\\\\", "\\"[", ["\\\\\\"]]]']
    whole = [files.json_scan(t) for t in texts]
    for chunk in (1, 2, 3, 5, 64):
        monkeypatch.setattr(files, "_SCAN_CHUNK", chunk)
        assert [files.json_scan(t) for t in texts] == whole, chunk


def test_the_json_limits_name_their_constants_and_can_be_changed(monkeypatch):
    files.loads_json("[" + "[]," * (files.MAX_JSON_CONTAINERS - 2) + "[]]", "JSON")  # at the limit: parsed
    with pytest.raises(files.FileFault, match=r"1000001 arrays and objects; allowed: at most 1000000 "
                                              r"\(opdispatch.files.MAX_JSON_CONTAINERS\)"):
        files.loads_json("[" + "{}," * (files.MAX_JSON_CONTAINERS - 1) + "{}]", "JSON")
    monkeypatch.setattr(files, "MAX_JSON_CONTAINERS", 3)
    assert files.loads_json('{"a": [[], "[[[["]}', "JSON") == {"a": [[], "[[[["]}
    with pytest.raises(files.FileFault, match="4 arrays and objects; allowed: at most 3"):
        files.loads_json('{"a": [[], {}]}', "JSON")
    monkeypatch.setattr(files, "MAX_JSON_VALUES", 4)
    assert files.loads_json('["a,b:c", 1, 2]', "JSON") == ["a,b:c", 1, 2]
    with pytest.raises(files.FileFault, match="about 5 values; allowed: at most 4 "
                                              r"\(opdispatch.files.MAX_JSON_VALUES\)"):
        files.loads_json("[1, 2, 3, 4]", "JSON")
    with pytest.raises(files.FileFault, match=r"nested 101 deep; allowed: at most 100 "
                                              r"\(opdispatch.files.MAX_JSON_DEPTH\)"):
        files.loads_json("[" * 101 + "]" * 101, "JSON")


def test_graph_files_over_the_json_limits_are_neither_loaded_nor_saved(tmp_path, monkeypatch):
    path = str(_write(tmp_path / "g.json", doc()))
    containers = files.json_scan(doc().decode())[1]
    monkeypatch.setattr(files, "MAX_JSON_CONTAINERS", containers - 1)
    _refuse(od.load_graph, path, od.GraphFormatError,
            [f"JSON has {containers} arrays and objects; allowed: at most {containers - 1}"])
    with pytest.raises(od.GraphFormatError, match=r"save: .*new.json: JSON: JSON has \d+ arrays and objects; "
                                                  r"allowed: at most .*nothing was written"):
        GRAPH.save(str(tmp_path / "new.json"))
    assert not (tmp_path / "new.json").exists()
    monkeypatch.setattr(files, "MAX_JSON_CONTAINERS", containers + 100)
    GRAPH.save(str(tmp_path / "new.json"))
    assert od.load_graph(str(tmp_path / "new.json")).ops() == GRAPH.ops()


def _meta_member(size):
    """A checkpoint (zip bytes) whose meta.json is valid and ``size`` bytes long (padded metadata)."""
    head, tail = json.dumps(meta(metadata={"pad": "PAD"})).encode().split(b"PAD")
    text = head + b"x" * (size - len(head) - len(tail)) + tail
    member = npy_header(header_of("|u1", (len(text),)).ljust(117) + "\n") + text
    return zip_bytes([{"name": "meta.json.npy", "data": member}, {"name": "params/w.npy", "data": W}])


def test_a_meta_json_over_64_mib_is_refused_unread(tmp_path, monkeypatch):
    """The size is judged from the member's header, so the 64 MiB are never read (nor decoded)."""
    assert files.MAX_JSON_BYTES == 64 * 2**20
    just = _write(tmp_path / "just.npz", _meta_member(4096))
    assert od.load_checkpoint(just).metadata["pad"].startswith("xxx")
    big = _write(tmp_path / "big.npz", _meta_member(files.MAX_JSON_BYTES + 1))
    _refuse(od.load_checkpoint, str(big), od.CheckpointError,
            [f"meta.json: is {files.MAX_JSON_BYTES + 1} bytes of JSON; allowed: at most {files.MAX_JSON_BYTES} "
             f"(opdispatch.files.MAX_JSON_BYTES)"])
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 4095)
    _refuse(od.load_checkpoint, str(just), od.CheckpointError, ["is 4096 bytes of JSON; allowed: at most 4095"])


def test_metadata_over_the_json_limits_is_not_saved(tmp_path):
    w = {"w": od.tensor([1.0, 2.0], dtype="float32")}
    for metadata, fragment in (({"pad": "x" * files.MAX_JSON_BYTES}, "bytes of JSON; allowed: at most 67108864"),
                               ({"x": [[]] * files.MAX_JSON_CONTAINERS}, "MAX_JSON_CONTAINERS"),
                               ({"x": [[[1]]] * 10 ** 5, "deep": json.loads("[" * 99 + "]" * 99)},
                                "nested 101 deep")):
        with pytest.raises(od.CheckpointError, match=f"save_checkpoint: argument 'metadata' cannot be stored: "
                                                     f"meta.json: .*{fragment}"):
            od.save_checkpoint(tmp_path / "c.npz", w, metadata=metadata)
        assert not (tmp_path / "c.npz").exists()


def test_shapes_are_bounded_by_their_non_zero_dimensions():
    m = files.MAX_ELEMENTS
    for ok in ([m], [0, m], [m, 0, 1], [2**24, 2**24], [0] * 32, [], [1] * 32):
        assert files.check_shape(ok, "x") == tuple(ok)
    for bad in ([m + 1], [0, m + 1], [2**24, 2**24 + 1], [2**63], [0, 2**70], [2**40, 2**40], [4] * 32):
        with pytest.raises(files.FileFault, match=r"declares over \d+ elements .*MAX_ELEMENTS"):
            files.check_shape(bad, "x")
    np.empty((0, m, 0), np.float64)  # the largest zero-size shape allowed is one NumPy can make


def test_optimizer_settings_too_big_for_a_float_are_argument_errors():
    w = {"w": od.tensor([1.0, 2.0], dtype="float32")}
    for make, arg in ((lambda: od.SGD(w, lr=10**400), "lr"), (lambda: od.SGD(w, momentum=10**400), "momentum"),
                      (lambda: od.Adam(w, eps=-10**400), "eps"), (lambda: od.Adam(w, beta2=2**1024), "beta2")):
        with pytest.raises(od.InvalidArgumentError, match=f"argument '{arg}' got an int of .* bits, too big for a "
                                                          f"float; allowed: a finite number"):
            make()


# -- a loaded graph's sources name files that are never read ------------------------------------------

def _graph_naming(tmp_path, filename):
    """A graph file whose every node says it was made at line 1 of ``filename``."""
    d = json.loads(doc())
    for node in d["nodes"]:
        node["sources"] = [[filename, 1, "evil"]]
    return str(_write(tmp_path / "named.json", json.dumps(d).encode()))


def _numerics_message(graph):
    """The NumericsError of running ``graph`` on inputs its conv overflows, in a thread (a blocking
    read of a source file fails the test instead of hanging it)."""
    out = {}

    def run():
        x = od.tensor(np.full((1, 3, 5, 5), 3e38, np.float32))
        try:
            with od.check_numerics():
                graph(x)
        except od.NumericsError as exc:
            out["message"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "formatting the error blocked on a source file"
    return out["message"]


@pytest.mark.parametrize("target", ["marker-file", "fifo", "/dev/zero", "/proc/self/environ"])
def test_errors_in_a_loaded_graph_never_read_the_files_its_sources_name(tmp_path, target):
    marker = tmp_path / "secret.py"
    marker.write_text("SECRET_MARKER = 'must not reach an error message'\n")
    if target == "marker-file":
        filename = str(marker)
    elif target == "fifo":
        filename = str(tmp_path / "fifo.py")
        os.mkfifo(filename)
    else:
        filename = target
    graph = od.load_graph(_graph_naming(tmp_path, filename))
    assert all(not s.readable and s.code == "" for n in graph.nodes for s in n.sources)
    message = _numerics_message(graph)
    assert "conv2d: its output on numpy:0 has" in message and f"at {filename}:1" in message
    assert "SECRET_MARKER" not in message and "must not reach" not in message
    saved = tmp_path / "again.json"  # saved again, the sources are the same text and still not read
    graph.save(str(saved))
    again = od.load_graph(str(saved))
    assert [n.sources for n in again.nodes] == [n.sources for n in graph.nodes]
    assert "SECRET_MARKER" not in _numerics_message(again)


def test_a_readable_source_reads_only_small_regular_files(tmp_path):
    from opdispatch.source import MAX_SOURCE_BYTES, Source

    code = tmp_path / "code.py"
    code.write_text("a = 1\n  b = 2  \n")
    assert Source(str(code), 2).code == "b = 2" and Source(str(code), 3).code == ""
    assert Source(str(code), 2, readable=False).code == ""
    big = tmp_path / "big.py"
    big.write_bytes(b"c = 3\n" + b"#" * MAX_SOURCE_BYTES)
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    link = tmp_path / "link.py"
    link.symlink_to(fifo)
    for name in (str(big), str(fifo), str(link), "/dev/zero", str(tmp_path), "/no/such/file.py", "a\0b.py"):
        t0 = time.perf_counter()
        assert Source(name, 1).code == ""
        assert time.perf_counter() - t0 < TIME_LIMIT_S
    assert Source(str(code), 1) == Source(str(code), 1, readable=False)  # the flag is not part of the identity


# -- arrays in a dtype the target device lacks ---------------------------------------------------------

def _float16_checkpoint(tmp_path):
    m = meta(arrays={"params/w": {"shape": [2], "dtype": "float32"}, "params/h": {"shape": [2], "dtype": "float16"},
                     "state/s": {"shape": [1], "dtype": "float16"}})
    return _write(tmp_path / "half.npz", ckpt(m, **{"params/w": W, "params/h": npy(np.array([1, 2], np.float16)),
                                                    "state/s": npy(np.zeros(1, np.float16))}))


def test_float16_arrays_onto_a_device_without_float16_are_refused_whole(tmp_path, monkeypatch, clean_registry):
    """A device that computes in float32 and float64 only: a float16 checkpoint is a CheckpointError
    naming the file, the arrays, their dtype and what the device allows, raised before any tensor is made."""
    import opdispatch.checkpoint as ckpt_module
    from opdispatch.backend import DeviceInfo
    from fake_backends import make_plugin

    od.register_plugin(make_plugin("nohalf", [], devices=[DeviceInfo(0, dtypes=("float32", "float64"))]))
    path = _float16_checkpoint(tmp_path)
    made = []
    real_tensor = ckpt_module.tensor
    monkeypatch.setattr(ckpt_module, "tensor", lambda *a, **k: made.append(a) or real_tensor(*a, **k))
    for device in ("nohalf:0", None):
        with od.device("nohalf:0"), pytest.raises(od.CheckpointError) as info:
            od.load_checkpoint(path, device=device)
        message = str(info.value)
        assert str(path) in message and "arrays 'params/h' (float16), 'state/s' (float16)" in message
        assert "dtype not supported on device nohalf:0; allowed there: float32, float64" in message
        assert made == []  # refused before a single parameter was loaded
    data = path.read_bytes()
    with od.device("nohalf:0"), pytest.raises(od.CheckpointError, match="dtype not supported"):
        od.load_checkpoint(path)
    assert path.read_bytes() == data


def test_float16_arrays_load_onto_a_device_that_has_float16(tmp_path, clean_registry):
    from opdispatch.backend import DeviceInfo
    from fake_backends import make_plugin

    od.register_plugin(make_plugin("half", [], devices=[DeviceInfo(0, dtypes=("float16", "float32"))]))
    ck = od.load_checkpoint(_float16_checkpoint(tmp_path), device="half:0")
    assert ck.params["h"].dtype == np.float16 and ck.params["h"].device == od.Device("half:0")
    np.testing.assert_array_equal(ck.params["h"].numpy(), [1, 2])
    assert ck.state["s"].dtype == np.float16


@pytest.mark.parametrize("bad", [-1, True, 1.5, "1000", [100], -10**400])
def test_both_loaders_check_max_bytes_alike(tmp_path, bad):
    """One shared check (opdispatch.files.size_limit): the loader's own error naming it and the argument."""
    ck, graph = _write(tmp_path / "c.npz", GOOD), _write(tmp_path / "g.json", doc())
    for load, path, error, name, default in ((od.load_checkpoint, ck, od.CheckpointError, "load_checkpoint", 8 * GiB),
                                             (od.load_graph, graph, od.GraphFormatError, "load_graph", GiB)):
        with pytest.raises(error, match=rf"^{name}: argument 'max_bytes' got .{{1,130}}; allowed: an int >= 0, "
                                        rf"or None for the default of {default} bytes$"):
            load(str(path), max_bytes=bad)
        assert load(str(path), max_bytes=None) is not None and load(str(path), max_bytes=len(path.read_bytes()))
