"""Save and load graphs without pickle: one JSON file holding the structure and the constants.

``save(graph, "model.json")`` writes ``model.json`` (``.json`` is added to a path without it):
the structure as JSON and every constant's bytes (little-endian, C order) base64-encoded in it,
written atomically (`opdispatch.files.atomic_write`), so the file is the old graph or the new
one, whole, never a mixture. Version 1 files -- a ``model.json`` with the constants in a
``model.npz`` beside it, as earlier releases wrote them -- still load.

Loading refuses anything but a regular file of at most `MAX_BYTES` (``load_graph(...,
max_bytes=N)`` raises it), parses the JSON with the standard parser after bounding its nesting
depth, containers and values (`opdispatch.files.check_json`, linear in the file's size), checks
every field and declared size (canonical value ids, no value over `MAX_VALUE_BYTES`, shapes
within `opdispatch.files.MAX_ELEMENTS`, constants whose bytes match their shape and dtype), reads
a version 1 ``.npz`` with `opdispatch.files.SafeNpz` (no pickle, headers checked before reading),
and re-runs each op's shape inference on the declared shapes, so a tampered, malformed or hostile
file fails with a `GraphFormatError` naming the file and the part at fault before anything runs
-- and never executes code. The source lines stored with each node are shown in error messages but
their files are never read (`Source(readable=False)`).

Node attributes are written and loaded in canonical form (the schema's normalisation resolved by
its shape inference), so save -> load -> save gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from typing import Any, Mapping, Optional, cast

import numpy as np

from ..backend import LAYOUTS
from ..device import Device
from ..dtypes import FLOAT_DTYPES
from ..errors import OpDispatchError
from ..files import (FileFault, Missing, SafeNpz, atomic_write, check_json, check_shape, loads_json, nbytes,
                     open_regular, read_all, short, size_limit)
from ..schema import TensorMeta
from .errors import GraphFormatError
from ..ops import OPS
from .ir import GraphIR, ValueInfo, make_node, readonly
from ..source import Source

FORMAT = "opdispatch.graph"
VERSION = 3
"""Written: one JSON file, constants embedded, with the SHA-256 of its content (``sha256``), so a file
changed or damaged after it was written is refused rather than loaded as another graph. Versions 1
(JSON + ``.npz``) and 2 (one file, no digest) are still read."""
VERSIONS = (1, 2, 3)
_DIGEST = re.compile(r"[0-9a-f]{64}")
DTYPES = {d.name for d in FLOAT_DTYPES} | {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                           "bool"}
MAX_BYTES = 2**30
"""The largest graph file (and version-1 ``.npz``) `load_graph` reads, 1 GiB, unless given
``max_bytes``; assign to raise it for every call."""
MAX_VALUE_BYTES = 2**38
"""The largest value (input, constant or intermediate) a loaded graph may declare: 256 GiB."""
MAX_ID = 2**31 - 1


def _paths(path: str) -> tuple[str, str]:
    base = path[:-5] if path.endswith(".json") else path
    return base + ".json", base + ".npz"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _encode(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return base64.b64encode(data.tobytes()).decode("ascii")


def to_dict(graph: GraphIR, origin: str = "graph") -> dict:
    """The JSON-ready description of ``graph`` (a version 2 document: `save` adds the digest that
    makes it version 3); constants are listed by value id in ``constants`` and their bytes are in
    ``data`` (base64, little-endian, C order).

    Node attributes are stored in the canonical form the op's schema gives them (normalised, then
    resolved by shape inference, as loading checks them), so a graph whose attributes were given in
    another form (``stride=2`` for ``(2, 2)``, lists for tuples, ``'SAME'`` padding) is written the
    way a loaded graph is, and save -> load -> save gives the same bytes. A node that does not check
    is a `GraphFormatError` naming ``origin`` and the node."""
    nodes = []
    for i, n in enumerate(graph.nodes):
        try:
            attrs = _check_node(f"node {i}", n.op, list(n.inputs), list(n.outputs), dict(n.attrs), graph.values)
        except FileFault as fault:
            raise GraphFormatError(f"save: {origin}: {fault.part}: {fault.what}; allowed: graphs whose every node "
                                   f"checks (nothing was written)") from None
        nodes.append({"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
                      "attrs": {k: _jsonable(v) for k, v in attrs.items()}, "device": str(n.device),
                      "sources": [[s.file, s.line, s.function] for s in n.sources], "fused_from": list(n.fused_from),
                      **({"decomposed_from": n.decomposed_from} if n.decomposed_from else {}),
                      **({"grad_of": n.grad_of} if n.grad_of else {}),
                      **({"layout": n.layout} if n.layout else {})})
    return {
        "format": FORMAT, "version": 2, "name": graph.name,  # save() makes it version 3 with its digest
        "inputs": list(graph.inputs), "outputs": list(graph.outputs), "constants": list(graph.constants),
        "values": {str(v): {"shape": list(i.shape), "dtype": i.dtype.name,
                            "device": None if i.device is None else str(i.device)} for v, i in graph.values.items()},
        "nodes": nodes,
        "data": {str(c): _encode(np.asarray(a)) for c, a in graph.constants.items()},
    }


def content_digest(doc: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a graph document without its ``sha256`` field, over its canonical JSON
    (sorted keys, no whitespace), so the digest does not depend on how the file is indented."""
    rest = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def save(graph: GraphIR, path: str) -> None:
    """Write ``graph`` with its constants to ``path`` (``.json`` added when missing), atomically:
    a unique temporary file beside it, fsynced, renamed over it; on any failure (also
    ``KeyboardInterrupt``) the old file stays and the temporary is removed. A graph `load_graph`
    would refuse (over the JSON limits of `opdispatch.files`) is a `GraphFormatError`, nothing written."""
    jpath, _ = _paths(os.fspath(path))
    doc = to_dict(graph, jpath)
    doc["version"] = VERSION
    doc["sha256"] = content_digest(doc)
    text = json.dumps(doc, indent=1)
    try:  # what load_graph would refuse (too many nodes for the JSON limits) is not written
        check_json(text, "JSON")
    except FileFault as fault:
        raise GraphFormatError(f"save: {jpath}: {fault}; nothing was written") from None
    atomic_write(jpath, lambda fh: fh.write(text.encode("utf-8")))


def _error(file: str, fault: FileFault, also: str = "") -> GraphFormatError:
    where = f"{file}{also}" if fault.part == "file" else f"{file}{also}: {fault.part}:"
    return GraphFormatError(f"load_graph: {where} {fault.what}")


def _read_constants(npath: str, jpath: str, limit: int) -> dict[str, np.ndarray]:
    """The arrays of a version 1 graph's ``.npz``."""
    also = f" (the constants of {jpath})"
    try:
        fh, size = open_regular(npath, limit)
        with fh, SafeNpz(fh, size) as npz:
            return {k: npz.array(k, DTYPES) for k in npz.keys()}
    except FileFault as fault:
        raise _error(npath, fault, also) from None


def load_graph(path: str, *, max_bytes: Optional[int] = None) -> GraphIR:
    """Read a graph written by ``Graph.save`` (either format version); a malformed, tampered or
    hostile file is a `GraphFormatError` naming the file and the part at fault. Files over
    ``max_bytes`` (default `MAX_BYTES`) are refused unread."""
    jpath, npath = _paths(os.fspath(path))
    limit = size_limit(max_bytes, MAX_BYTES, "load_graph", GraphFormatError)
    try:
        fh, size = open_regular(jpath, limit)
        with fh:
            raw = read_all(fh, size)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFault("JSON", f"not valid JSON: not UTF-8 ({exc})") from None
        del raw
        doc = loads_json(text, "JSON")
        del text
    except Missing:
        raise GraphFormatError(f"load_graph: cannot read {jpath}: no such file") from None
    except FileFault as fault:
        raise _error(jpath, fault) from None
    arrays = None
    if isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("version") == 1 \
            and not isinstance(doc.get("version"), bool):
        arrays = _read_constants(npath, jpath, limit)
    return from_dict(doc, arrays, jpath)


def _fail(where: str, what: str) -> FileFault:
    return FileFault(where, what)


def _int(value: Any, where: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or \
            (maximum is not None and value > maximum):
        allowed = f"an int >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        raise _fail(where, f"got {short(value)}; allowed: {allowed}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise _fail(where, f"got {type(value).__name__}; allowed: a list")
    return value


def _tuples(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v, where) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise _fail(where, f"got {type(value).__name__}; allowed: numbers, strings, booleans, null and lists")


def _device(spec: Any, where: str) -> Device:
    if not isinstance(spec, str):
        raise _fail(where, f"device {short(spec)}; allowed: a string such as 'numpy:0'")
    try:
        return Device(spec)
    except Exception as exc:  # DeviceError, or an index too long for int()
        raise _fail(where, f"device {short(spec)}: {exc}"[:300]) from None


_ID = re.compile(r"0|[1-9][0-9]{0,9}")
"""A value id as `str` writes an int: ASCII digits without a sign, spaces, '_' or leading zeros, so
no two spellings ("7", "007", "+7") name one value."""


def _value(vid: str, spec: Any) -> ValueInfo:
    where = f"value {short(vid)}"
    if not isinstance(spec, dict):
        raise _fail(where, "allowed: an object with shape, dtype and device")
    shape = check_shape(_list(spec.get("shape"), where + " shape"), where)
    dtype = spec.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _fail(where, f"dtype {short(dtype)}; allowed: {sorted(DTYPES)}")
    size = nbytes(shape, np.dtype(dtype))
    if size > MAX_VALUE_BYTES:
        raise _fail(where, f"shape {list(shape)} {dtype} is {size} bytes; allowed: at most {MAX_VALUE_BYTES} "
                           f"(opdispatch.graph.serialize.MAX_VALUE_BYTES)")
    dev = spec.get("device")
    device = None if dev is None else _device(dev, where)
    return ValueInfo(shape, np.dtype(dtype), device)


def _decode(c: int, text: Any, info: ValueInfo) -> np.ndarray:
    where = f"constant {c}"
    if not isinstance(text, str):
        raise _fail(where, f"data is {type(text).__name__}; allowed: a base64 string")
    size = nbytes(info.shape, info.dtype)
    want = 4 * ((size + 2) // 3)
    if len(text) != want:
        raise _fail(where, f"data holds {len(text)} base64 characters; a {list(info.shape)} {info.dtype.name} "
                           f"constant takes {want}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(where, f"data is not base64: {exc}") from None
    if len(raw) != size:
        raise _fail(where, f"data decodes to {len(raw)} bytes; allowed: {size}")
    out = np.frombuffer(raw, dtype=info.dtype.newbyteorder("<")).reshape(info.shape).astype(info.dtype)
    out.flags.writeable = False
    return out


def from_dict(doc: Any, arrays: Optional[dict] = None, origin: str = "graph") -> GraphIR:
    """Build and check a graph from its JSON description; ``arrays`` are a version 1 graph's
    constants (``c<id>`` -> array), version 2 documents carry their own. Errors name ``origin``."""
    try:
        return _from_dict(doc, arrays)
    except FileFault as fault:
        raise _error(origin, fault) from None


def _from_dict(doc: Any, arrays: Optional[dict]) -> GraphIR:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail("file", f"is not an opdispatch graph (format field must be {FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, bool) or version not in VERSIONS:
        raise _fail("file", f"has version {short(version)}; allowed: {', '.join(map(str, VERSIONS))}")
    if version == 3:
        digest = doc.get("sha256")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise _fail("sha256", f"got {short(digest)}; allowed: the 64 lower-case hex digits of the SHA-256 of the "
                                  f"file's content (as Graph.save writes it)")
        if digest != content_digest(doc):
            raise _fail("sha256", "does not match the file's content: it was changed or damaged after it was "
                                  "written; allowed: files as Graph.save wrote them")
    if version == 1 and arrays is None:
        raise _fail("file", "is a version 1 graph, whose constants are in the .npz beside it; "
                            "allowed: od.load_graph(path)")
    name = doc.get("name", "graph")
    if not isinstance(name, str):
        raise _fail("name", f"got {type(name).__name__}; allowed: a string")
    specs = doc.get("values")
    if not isinstance(specs, dict):
        raise _fail("values", "allowed: an object mapping value ids to shape, dtype and device")
    values = {}
    for vid, spec in specs.items():
        if not _ID.fullmatch(vid) or int(vid) > MAX_ID:
            raise _fail("values", f"id {short(vid)}; allowed: integers 0 to {MAX_ID} written in decimal without "
                                  f"sign, spaces or leading zeros")
        values[int(vid)] = _value(vid, spec)
    defined: set[int] = set()

    def use(v: Any, where: str) -> int:
        v = _int(v, where, maximum=MAX_ID)
        if v not in values:
            raise _fail(where, f"value {v} is not declared in 'values'")
        if v not in defined:
            raise _fail(where, f"value {v} is used before it is defined (nodes must be in topological order)")
        return v

    def define(v: Any, where: str) -> int:
        v = _int(v, where, maximum=MAX_ID)
        if v not in values:
            raise _fail(where, f"value {v} is not declared in 'values'")
        if v in defined:
            raise _fail(where, f"value {v} is defined twice")
        defined.add(v)
        return v

    inputs = [define(v, "inputs") for v in _list(doc.get("inputs"), "inputs")]
    const_ids = [define(c, "constants") for c in _list(doc.get("constants"), "constants")]
    if version == 1:
        arrays = cast(dict, arrays)  # version 1 documents come with their .npz arrays
        extra = sorted(set(arrays) - {f"c{c}" for c in const_ids})
        if extra:
            raise _fail("constants", f"the .npz holds arrays {short(extra)} the graph does not list")
    else:
        data = doc.get("data")
        if not isinstance(data, dict) or set(data) != {str(c) for c in const_ids}:
            got = sorted(data)[:20] if isinstance(data, dict) else type(data).__name__
            raise _fail("data", f"holds {short(got)}; allowed: an object with the data of each constant "
                                f"{short([str(c) for c in const_ids])}")
    constants = {}
    for c in const_ids:
        info = values[c]
        if version == 1:
            arr = arrays.get(f"c{c}")  # type: ignore[union-attr]
            if not isinstance(arr, np.ndarray) or arr.shape != info.shape or arr.dtype != info.dtype:
                got = "missing" if arr is None else f"shape {arr.shape} dtype {arr.dtype}"
                raise _fail(f"constant {c}", f"array is {got}; allowed: shape {info.shape} dtype {info.dtype.name}")
            constants[c] = readonly(arr)
        else:
            constants[c] = _decode(c, cast(dict, data)[str(c)], info)  # a dict: checked above
    nodes = [_node(i, spec, values, use, define) for i, spec in enumerate(_list(doc.get("nodes"), "nodes"))]
    outputs = [use(v, "outputs") for v in _list(doc.get("outputs"), "outputs")]
    return GraphIR(name=name, inputs=tuple(inputs), outputs=tuple(outputs),
                 nodes=tuple(nodes), values=values, constants=constants).replace()


def _node(i: int, spec: Any, values: dict, use: Any, define: Any) -> Any:
    where = f"node {i}"
    if not isinstance(spec, dict):
        raise _fail(where, "allowed: an object with op, inputs, outputs, attrs, device")
    op = spec.get("op")
    if not isinstance(op, str):
        raise _fail(where, f"op {short(op)}; allowed: an op name")
    attrs_doc = spec.get("attrs", {})
    if not isinstance(attrs_doc, dict):
        raise _fail(where, "attrs: allowed: an object")
    attrs = {str(k): _tuples(v, f"{where} attrs") for k, v in attrs_doc.items()}
    ins = [None if v is None else use(v, f"{where} inputs") for v in _list(spec.get("inputs"), f"{where} inputs")]
    device = _device(spec.get("device"), where)
    sources = []
    for s in _list(spec.get("sources", []), f"{where} sources"):
        if not (isinstance(s, list) and len(s) == 3 and isinstance(s[0], str) and isinstance(s[2], str)):
            raise _fail(where, f"source {short(s)}; allowed: [file, line, function]")
        # the file names come from the file: error messages show them but never read them
        sources.append(Source(s[0], _int(s[1], f"{where} source line"), s[2], readable=False))
    fused_from = _list(spec.get("fused_from", []), f"{where} fused_from")
    if not all(isinstance(f, str) for f in fused_from):
        raise _fail(where, "fused_from: allowed: op names")
    decomposed_from = spec.get("decomposed_from", "")
    if not isinstance(decomposed_from, str) or (decomposed_from and decomposed_from not in OPS):
        raise _fail(where, f"decomposed_from {short(decomposed_from)}; allowed: an op name")
    grad_of = spec.get("grad_of", "")
    if not isinstance(grad_of, str) or len(grad_of) > 4096:
        raise _fail(where, f"grad_of {short(grad_of)}; allowed: a short text (the forward op it differentiates)")
    out_spec = _list(spec.get("outputs"), f"{where} outputs")
    attrs = _check_node(where, op, ins, out_spec, attrs, values)  # the node keeps the canonical form
    outs = [define(v, f"{where} outputs") for v in out_spec]
    layout = spec.get("layout", "")
    if layout not in ("",) + LAYOUTS:
        raise _fail(where, f"layout {short(layout)}; allowed: one of {list(LAYOUTS)} (or none)")
    return make_node(op, ins, outs, attrs, device, sources, fused_from, decomposed_from, grad_of, layout)


def _check_node(where: str, op: str, ins: list, outs: list, attrs: dict, values: Mapping[int, ValueInfo]) -> dict:
    """Re-run the op's shape inference on the declared input shapes (the outputs must match) and
    return the attributes in canonical form: normalised by the schema and resolved by its inference
    (what kernels receive, and what normalising and inferring again gives back)."""
    metas: list[Optional[TensorMeta]] = [None if v is None else TensorMeta(values[v].shape, values[v].dtype)
                                         for v in ins]
    if op == "copy":
        if len(ins) != 1 or len(outs) != 1 or ins[0] is None or set(attrs) != {"device"}:
            raise _fail(where, "a copy takes one input and one output and a 'device' attribute")
        canonical: dict = {"device": str(_device(attrs["device"], where))}
        expected = [cast(TensorMeta, metas[0])]  # ins[0] is not None (checked above)
    else:
        schema = OPS.get(op)
        if schema is None:
            raise _fail(where, f"unknown op {short(op)}")
        count_ok = len(ins) >= len(schema.inputs) if schema.variadic else len(ins) == len(schema.inputs)
        if not count_ok or set(attrs) != set(schema.attr_names):
            raise _fail(where, f"{op} takes inputs {[s.name for s in schema.inputs]} and attributes "
                               f"{list(schema.attr_names)}; got {len(ins)} inputs and {short(sorted(attrs))}")
        try:
            expected, canonical = schema.infer(op, metas, schema.normalize(attrs) if schema.attrs else attrs)
        except OpDispatchError as exc:
            raise _fail(where, f"the node does not check: {short(str(exc), 300)}") from None
        except Exception as exc:  # a normaliser meeting a value of the wrong kind
            raise _fail(where, f"the node does not check: {type(exc).__name__}: {short(str(exc), 300)}") from None
    declared = [values[v] if isinstance(v, int) and not isinstance(v, bool) and v in values else None for v in outs]
    if len(declared) != len(expected) or any(d is None or (d.shape, d.dtype) != (m.shape, m.dtype)
                                             for d, m in zip(declared, expected)):
        raise _fail(where, f"{op}: declared outputs do not match the op's inference "
                           f"{[(m.shape, m.dtype.name) for m in expected]}")
    return dict(canonical)
