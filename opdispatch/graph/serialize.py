"""Save and load graphs without pickle: the structure as JSON, the constants as ``.npz``.

``save(graph, "model.json")`` writes ``model.json`` and ``model.npz``. Loading reads the JSON
with the standard parser and the arrays with ``np.load(allow_pickle=False)``, checks every field,
and re-runs each op's shape inference on the declared shapes, so a tampered or malformed file
fails with a `GraphFormatError` before anything runs -- and never executes code.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any, Optional

import numpy as np

from ..device import Device
from ..dtypes import FLOAT_DTYPES
from ..errors import OpDispatchError
from ..schema import TensorMeta
from .errors import GraphFormatError
from ..ops import OPS
from .ir import Graph, ValueInfo, make_node, readonly
from .source import Source

FORMAT = "opdispatch.graph"
VERSION = 1
DTYPES = {d.name for d in FLOAT_DTYPES} | {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                           "bool"}


def _paths(path: str) -> tuple[str, str]:
    base = path[:-5] if path.endswith(".json") else path
    return base + ".json", base + ".npz"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_dict(graph: Graph) -> dict:
    """The JSON-ready description of ``graph`` (constants referenced by value id)."""
    return {
        "format": FORMAT, "version": VERSION, "name": graph.name,
        "inputs": list(graph.inputs), "outputs": list(graph.outputs), "constants": list(graph.constants),
        "values": {str(v): {"shape": list(i.shape), "dtype": i.dtype.name,
                            "device": None if i.device is None else str(i.device)} for v, i in graph.values.items()},
        "nodes": [{"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
                   "attrs": {k: _jsonable(v) for k, v in n.attrs.items()}, "device": str(n.device),
                   "sources": [[s.file, s.line, s.function] for s in n.sources], "fused_from": list(n.fused_from)}
                  for n in graph.nodes],
    }


def save(graph: Graph, path: str) -> None:
    """Write ``graph`` to ``path`` (``.json``) and its constants to the ``.npz`` beside it."""
    jpath, npath = _paths(path)
    with open(jpath, "w") as fh:
        json.dump(to_dict(graph), fh, indent=1)
    np.savez(npath, **{f"c{c}": np.asarray(a) for c, a in graph.constants.items()})


def load_graph(path: str) -> Graph:
    """Read a graph written by ``Graph.save``; a malformed or tampered file is a `GraphFormatError`."""
    jpath, npath = _paths(path)
    try:
        with open(jpath) as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GraphFormatError(f"load_graph: cannot read {jpath!r}: {exc}") from None
    try:
        with np.load(npath, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise GraphFormatError(f"load_graph: cannot read the constants {npath!r} (pickled data is refused): "
                               f"{exc}") from None
    return from_dict(doc, arrays, jpath)


def _fail(where: str, what: str) -> GraphFormatError:
    return GraphFormatError(f"load_graph: {where}: {what}")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _fail(where, f"got {value!r}; allowed: an int >= {minimum}")
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


def _value(vid: str, spec: Any) -> ValueInfo:
    where = f"value {vid}"
    if not isinstance(spec, dict):
        raise _fail(where, "allowed: an object with shape, dtype and device")
    shape = tuple(_int(d, where + " shape") for d in _list(spec.get("shape"), where + " shape"))
    if spec.get("dtype") not in DTYPES:
        raise _fail(where, f"dtype {spec.get('dtype')!r}; allowed: {sorted(DTYPES)}")
    dev = spec.get("device")
    if dev is not None and not isinstance(dev, str):
        raise _fail(where, f"device {dev!r}; allowed: a string such as 'numpy:0' or null")
    try:
        device = None if dev is None else Device(dev)
    except OpDispatchError as exc:
        raise _fail(where, str(exc)) from None
    return ValueInfo(shape, np.dtype(spec["dtype"]), device)


def from_dict(doc: Any, arrays: dict, origin: str = "graph") -> Graph:
    """Build and check a graph from its JSON description and constant arrays."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(origin, f"not an opdispatch graph (format field must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise _fail(origin, f"version {doc.get('version')!r}; allowed: {VERSION}")
    specs = doc.get("values")
    if not isinstance(specs, dict):
        raise _fail("values", "allowed: an object mapping value ids to shape, dtype and device")
    values = {}
    for vid, spec in specs.items():
        if not vid.isdigit():
            raise _fail("values", f"id {vid!r}; allowed: non-negative integers")
        values[int(vid)] = _value(vid, spec)
    defined: set[int] = set()

    def use(v: Any, where: str) -> int:
        v = _int(v, where)
        if v not in values:
            raise _fail(where, f"value {v} is not declared in 'values'")
        if v not in defined:
            raise _fail(where, f"value {v} is used before it is defined (nodes must be in topological order)")
        return v

    def define(v: Any, where: str) -> int:
        v = _int(v, where)
        if v not in values:
            raise _fail(where, f"value {v} is not declared in 'values'")
        if v in defined:
            raise _fail(where, f"value {v} is defined twice")
        defined.add(v)
        return v

    inputs = [define(v, "inputs") for v in _list(doc.get("inputs"), "inputs")]
    constants = {}
    for c in _list(doc.get("constants"), "constants"):
        c = define(c, "constants")
        arr = arrays.get(f"c{c}")
        info = values[c]
        if not isinstance(arr, np.ndarray) or arr.shape != info.shape or arr.dtype != info.dtype:
            got = "missing" if arr is None else f"shape {arr.shape} dtype {arr.dtype}"
            raise _fail(f"constant {c}", f"array is {got}; allowed: shape {info.shape} dtype {info.dtype.name}")
        constants[c] = readonly(arr)
    nodes = [_node(i, spec, values, use, define) for i, spec in enumerate(_list(doc.get("nodes"), "nodes"))]
    outputs = [use(v, "outputs") for v in _list(doc.get("outputs"), "outputs")]
    name = doc.get("name")
    return Graph(name=name if isinstance(name, str) else "graph", inputs=tuple(inputs), outputs=tuple(outputs),
                 nodes=tuple(nodes), values=values, constants=constants).replace()


def _node(i: int, spec: Any, values: dict, use: Any, define: Any) -> Any:
    where = f"node {i}"
    if not isinstance(spec, dict):
        raise _fail(where, "allowed: an object with op, inputs, outputs, attrs, device")
    op = spec.get("op")
    attrs_doc = spec.get("attrs", {})
    if not isinstance(attrs_doc, dict):
        raise _fail(where, "attrs: allowed: an object")
    attrs = {str(k): _tuples(v, f"{where} attrs") for k, v in attrs_doc.items()}
    ins = [None if v is None else use(v, f"{where} inputs") for v in _list(spec.get("inputs"), f"{where} inputs")]
    try:
        device = Device(spec.get("device"))  # type: ignore[arg-type]
    except OpDispatchError as exc:
        raise _fail(where, str(exc)) from None
    sources = []
    for s in _list(spec.get("sources", []), f"{where} sources"):
        if not (isinstance(s, list) and len(s) == 3 and isinstance(s[0], str) and isinstance(s[2], str)):
            raise _fail(where, f"source {s!r}; allowed: [file, line, function]")
        sources.append(Source(s[0], _int(s[1], f"{where} source line"), s[2]))
    fused_from = _list(spec.get("fused_from", []), f"{where} fused_from")
    if not all(isinstance(f, str) for f in fused_from):
        raise _fail(where, "fused_from: allowed: op names")
    out_spec = _list(spec.get("outputs"), f"{where} outputs")
    _check_node(where, op, ins, out_spec, attrs, values)
    outs = [define(v, f"{where} outputs") for v in out_spec]
    return make_node(op, ins, outs, attrs, device, sources, fused_from)


def _check_node(where: str, op: Any, ins: list, outs: list, attrs: dict, values: dict) -> None:
    """Re-run the op's shape inference on the declared input shapes; the outputs must match."""
    metas: list[Optional[TensorMeta]] = [None if v is None else TensorMeta(values[v].shape, values[v].dtype)
                                         for v in ins]
    if op == "copy":
        if len(ins) != 1 or len(outs) != 1 or ins[0] is None or not isinstance(attrs.get("device"), str):
            raise _fail(where, "a copy takes one input and one output and a 'device' attribute")
        try:
            Device(attrs["device"])
        except OpDispatchError as exc:
            raise _fail(where, str(exc)) from None
        expected = [metas[0]]
    else:
        try:
            schema = OPS[op]
        except (KeyError, TypeError):
            raise _fail(where, f"unknown op {op!r}") from None
        if len(ins) != len(schema.inputs) or set(attrs) != set(schema.attr_names):
            raise _fail(where, f"{op} takes inputs {[s.name for s in schema.inputs]} and attributes "
                               f"{list(schema.attr_names)}; got {len(ins)} inputs and {sorted(attrs)}")
        try:
            expected, _ = schema.infer(op, metas, schema.normalize(attrs) if schema.attrs else attrs)
        except OpDispatchError as exc:
            raise _fail(where, f"the node does not check: {exc}") from None
        except Exception as exc:  # a normaliser meeting a value of the wrong kind
            raise _fail(where, f"the node does not check: {type(exc).__name__}: {exc}") from None
    declared = [values[_int(v, f"{where} outputs")] if isinstance(v, int) and v in values else None for v in outs]
    if len(declared) != len(expected) or any(d is None or (d.shape, d.dtype) != (m.shape, m.dtype)
                                             for d, m in zip(declared, expected)):
        raise _fail(where, f"{op}: declared outputs do not match the op's inference "
                           f"{[(m.shape, m.dtype.name) for m in expected]}")
