"""ONNX's own backend test cases as plain data, and a small interpreter that runs them with opdispatch ops.

Needs the optional ``onnx`` package. Used twice: ``tests/test_reference_onnx.py`` checks the
reference kernels against ONNX's expected outputs, and the conformance suite records every op
call the ONNX graphs make (`conformance_cases`) and replays it on the device under test. Two
sources of cases:

* the node tests, built in memory by ``onnx.backend.test.loader.load_model_tests(kind="node")``
  (one ONNX node per model, plus the ``*_expanded`` function bodies of some ops);
* the models exported from PyTorch that ship with the onnx wheel
  (``load_model_tests(kind="pytorch-converted")`` and ``kind="pytorch-operator"``), small graphs
  in old opsets (6 to 9) with their input/output data in ``test_data_set_*/*.pb``.

Kept: the node tests of the ops of ``COVERED_OPS`` (single-node graphs, and their ``*_expanded``
function bodies) and every PyTorch export whose graph uses one of them. Whether a case can run is
decided by the skip rules of the test module, never here. The interpreter translates each ONNX
node into calls of opdispatch ops (ONNX attributes turned into our user-facing attributes) and
hands every call to an *executor*: `ReferenceExecutor` runs the op's schema (normalise, shape
inference) and its float64 reference kernel; `EagerExecutor` runs the public ``od.<op>`` on a
device. The translation is the importer's own table (`opdispatch.onnx.TRANSLATORS`, written from
the ONNX operator specification, independently of opdispatch's own helpers), so these cases check
``od.onnx.load``'s translations too.
"""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import onnx
import opdispatch as od
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests
from opdispatch.onnx import HOST_INPUTS, TRANSLATORS, USES, node_attrs
from opdispatch.ops import OPS

from .cases import Case, In

#: The ONNX ops this suite checks: every op with an opdispatch counterpart (Gemm as matmul + add).
#: Those whose od ops this opdispatch lacks (`missing_od_ops`) are collected but skipped.
COVERED_OPS = (
    "Conv", "MaxPool", "AveragePool", "BatchNormalization", "MatMul", "Gemm",
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Add", "Sub", "Mul", "Div",
    "Softmax", "LogSoftmax", "Reshape", "Transpose", "Flatten", "ReduceSum", "ReduceMean", "ReduceMax",
    # the CNN-zoo additions
    "ConvTranspose", "GlobalAveragePool", "GlobalMaxPool", "LRN", "LayerNormalization",
    "Abs", "Erf", "HardSwish", "HardSigmoid", "LeakyRelu", "Gelu", "Clip", "Pow", "Where", "Max", "Min", "Sum",
    "Mean", "ReduceMin", "Concat", "Split", "Pad", "Slice", "Squeeze", "Unsqueeze",
    "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "ArgMax", "ArgMin", "Expand", "Dropout",
    "Not", "Swish",
)


def missing_od_ops(op_types: Any) -> list[str]:
    """The od ops that the translations of ``op_types`` may call and this opdispatch lacks."""
    return sorted({op for t in op_types for op in USES.get(t, ()) if op not in OPS})


#: The file-based case kinds shipped in the onnx wheel that hold small single-op PyTorch exports.
FILE_KINDS = ("pytorch-converted", "pytorch-operator")


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

DataSet = tuple[dict, tuple]  # (feeds {input name: array}, ((output name, expected array), ...))


@dataclass(frozen=True)
class OnnxCase:
    """One ONNX test: its graph (nodes, initializers) and its input/output data sets."""

    name: str
    source: str                      # "node", "pytorch-converted" or "pytorch-operator"
    opset: int                       # version of the default ("" / "ai.onnx") domain
    nodes: tuple                     # onnx.NodeProto, in topological order
    initializers: dict               # name -> np.ndarray
    data_sets: tuple                 # of DataSet

    @property
    def op_types(self) -> tuple[str, ...]:
        """Distinct ONNX op types of the graph, in order of first use."""
        return tuple(dict.fromkeys(n.op_type for n in self.nodes))

    @property
    def covered_ops(self) -> tuple[str, ...]:
        """The op types of the graph that this suite checks."""
        return tuple(op for op in self.op_types if op in COVERED_OPS)

    def __repr__(self) -> str:  # pytest shows this in failure reports
        return f"OnnxCase({self.name!r}, {self.source}, opset {self.opset}, ops {list(self.op_types)})"


def _to_array(value: Any) -> np.ndarray:
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def _default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ValueError(f"model {model.graph.name!r} imports no default-domain opset")


def _from_node_case(tc: Any) -> OnnxCase:
    graph = tc.model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    sets = []
    for inputs, outputs in tc.data_sets:
        in_names = [vi.name for vi in graph.input if vi.name not in inits]
        feeds = {n: _to_array(v) for n, v in zip(in_names, inputs)}
        expected = tuple((vi.name, _to_array(v)) for vi, v in zip(graph.output, outputs))
        sets.append((feeds, expected))
    return OnnxCase(tc.name, "node", _default_opset(tc.model), tuple(graph.node), inits, tuple(sets))


def _load_pb(path: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(path))


def _from_file_case(tc: Any) -> OnnxCase:
    model = onnx.load(os.path.join(tc.model_dir, "model.onnx"))
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    in_names = [vi.name for vi in graph.input if vi.name not in inits]
    sets = []
    for set_dir in sorted(glob.glob(os.path.join(tc.model_dir, "test_data_set_*"))):
        n_in = len(glob.glob(os.path.join(set_dir, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(set_dir, "output_*.pb")))
        feeds = {in_names[i]: _load_pb(os.path.join(set_dir, f"input_{i}.pb")) for i in range(n_in)}
        expected = tuple((graph.output[i].name, _load_pb(os.path.join(set_dir, f"output_{i}.pb")))
                         for i in range(n_out))
        sets.append((feeds, expected))
    return OnnxCase(tc.name, tc.kind, _default_opset(model), tuple(graph.node), inits, tuple(sets))


def load_cases() -> list[OnnxCase]:
    """The node tests of the ops of `COVERED_OPS` (with their expanded forms) and every PyTorch
    export whose graph uses one of them, sorted by name.

    Building the node cases runs every exporter of ``onnx.backend.test.case.node`` (about 5 s);
    call this once per process (the test module does so at import)."""
    with warnings.catch_warnings():  # the exporters of unrelated ops overflow casts, divide by 0 ...
        warnings.simplefilter("ignore")
        node_cases = load_model_tests(kind="node")
    # The node tests of our ops: one node of a covered op, and the expanded function bodies of
    # those tests (named "<test>_expanded[_verN]"). Expanded bodies of other ops (attention, layer
    # normalisation, ...) use Mul or Exp too but test those other ops, so they are left out.
    own = {tc.name for tc in node_cases  # node tests always carry their model (Optional for the other kinds)
           if len(tc.model.graph.node) == 1  # type: ignore[union-attr]
           and tc.model.graph.node[0].op_type in COVERED_OPS}  # type: ignore[union-attr]
    cases = [_from_node_case(tc) for tc in node_cases
             if tc.name in own or tc.name.split("_expanded")[0] in own]
    for kind in FILE_KINDS:
        for tc in load_model_tests(kind=kind):
            case = _from_file_case(tc)
            if case.covered_ops:
                cases.append(case)
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssertionError(f"duplicate ONNX case names across sources: {dupes}")
    return sorted(cases, key=lambda c: c.name)


# --------------------------------------------------------------------------------------------
# Executors: how one opdispatch op call is run
# --------------------------------------------------------------------------------------------


def kernel_call(schema: Any, inputs: tuple, attrs: dict) -> tuple[tuple, dict]:
    """An ``od.<op>(...)`` call as (flat inputs in schema order, attributes): a variadic input's
    sequence spread out, inputs given as keywords (``weight=``, ``bias=``) moved into place."""
    attrs = dict(attrs)
    if schema.variadic:
        return tuple(schema.flatten_args(inputs)), attrs
    flat = list(inputs)
    names = [i.name for i in schema.inputs]
    if any(n in attrs for n in names[len(flat):]):
        for n in names[len(flat):]:
            flat.append(attrs.pop(n, None))
    return tuple(flat), attrs


class ReferenceExecutor:
    """Runs an op through its schema: ``normalize`` (user attributes), ``infer`` (shape/dtype
    inference, kernel attributes) and the float64 ``reference``; checks that the reference output
    is float64 with the shape inference promised. Float data is fed as float64 (the reference's
    own precision), so every op call sees one float dtype."""

    name = "reference"

    def __init__(self) -> None:
        self._ops = OPS
        self._meta = od.TensorMeta

    def feed(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        return array.astype(np.float64) if array.dtype.kind == "f" else array

    def scalar(self, value: float, like: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    training = False

    def host(self, value: Any) -> bool:
        """Integer and bool data (shapes, indices) is host data, folded with NumPy; float data runs as ops."""
        return np.asarray(value).dtype.kind != "f"

    def cast(self, value: Any, dtype: np.dtype) -> Any:
        # float to float keeps the reference's float64
        return value if np.dtype(dtype).kind == "f" and value.dtype.kind == "f" else np.asarray(value).astype(dtype)

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        schema = self._ops[op]
        inputs, attrs = kernel_call(schema, inputs, attrs)
        canonical = schema.normalize(attrs)
        metas = [None if a is None else self._meta(tuple(np.shape(a)), np.asarray(a).dtype) for a in inputs]
        out_metas, kernel_attrs = schema.infer(schema.name, metas, canonical)
        result = schema.reference(*inputs, **kernel_attrs)
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(out_metas):
            raise AssertionError(f"{op}: reference returned {len(results)} outputs, shape inference promised "
                                 f"{len(out_metas)}")
        for i, (r, m) in enumerate(zip(results, out_metas)):
            r = np.asarray(r)
            if r.dtype != (np.float64 if m.dtype.kind == "f" else m.dtype):  # bool and int outputs keep theirs
                raise AssertionError(f"{op}: reference output {i} has dtype {r.dtype}, shape inference said "
                                     f"{m.dtype} (float outputs: float64)")
            if r.shape != tuple(m.shape):
                raise AssertionError(
                    f"{op}: reference output {i} has shape {r.shape}, shape inference said {tuple(m.shape)} "
                    f"(inputs {[None if m_ is None else m_.shape for m_ in metas]}, kernel attrs {kernel_attrs})")
        return result

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)


class EagerExecutor:
    """Runs the public ``od.<op>`` eagerly on one device, with the ONNX data's own dtypes."""

    def __init__(self, device: str = "numpy:0") -> None:
        self._od = od
        self.device = device
        self.name = f"eager on {device}"

    def feed(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array)

    def scalar(self, value: float, like: Any) -> np.ndarray:
        return np.asarray(value, dtype=like.dtype)

    training = False

    def host(self, value: Any) -> bool:
        return isinstance(value, (np.ndarray, np.generic)) and np.asarray(value).dtype.kind != "f"

    def cast(self, value: Any, dtype: np.dtype) -> Any:
        return value if value.dtype == dtype else value.astype(dtype)

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        with self._od.device(self.device):
            return getattr(self._od, op)(*inputs, **attrs)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)


# --------------------------------------------------------------------------------------------
# Translation of ONNX nodes into opdispatch op calls: the importer's own table (opdispatch.onnx)
# --------------------------------------------------------------------------------------------


def run_graph(case: OnnxCase, feeds: dict, ex: Any) -> dict:
    """Evaluate the case's graph on ``feeds`` with executor ``ex``; every value by name.
    Outputs a translation does not produce (e.g. MaxPool's Indices) are absent."""
    values: dict[str, Any] = {n: ex.feed(v) for n, v in case.initializers.items()}
    values.update({n: ex.feed(v) for n, v in feeds.items()})
    for node in case.nodes:
        args = [values[n] if n else None for n in node.input]
        outs = TRANSLATORS[node.op_type](ex, args, node_attrs(node), case.opset)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        for name, value in zip(node.output, outs):
            if name:
                values[name] = value
    return values


def float_dtype(dtype: Optional[np.dtype]) -> bool:
    """True for the float dtypes opdispatch supports (float16 counts: it is optional, not refused)."""
    return dtype is not None and np.dtype(dtype).kind == "f"


class DeviceValue(np.ndarray):
    """An int or bool array that stands for data on the device (a graph input the node computes with,
    or an op's result), not for a constant or a shape: the recording executor runs the ops on it as
    op calls, which it records, where the reference executor folds int and bool data on the host."""


#: The int and bool dtypes an op call may take (besides the floats) and a recorded case keeps exactly.
VALUE_DTYPES = frozenset(np.dtype(d) for d in ("int32", "int64", "bool"))


def device_inputs(case: "OnnxCase") -> frozenset:
    """The graph inputs that some node computes with (at an input position its translation does not
    read on the host, see `opdispatch.onnx.HOST_INPUTS`): data on the device in an imported model."""
    return frozenset(name for node in case.nodes for i, name in enumerate(node.input)
                     if name and i not in HOST_INPUTS.get(node.op_type, ()))


def _recorded_input(a: Any) -> In:
    """One recorded input: float values follow the run's dtype; int32, int64 and bool keep theirs (exact)."""
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        return In(tuple(arr.shape), "array", values=tuple(arr.astype(np.float64).ravel().tolist()))
    return In(tuple(arr.shape), "array", values=tuple(arr.ravel().tolist()), dtype=arr.dtype.name)


class RecordingExecutor(ReferenceExecutor):
    """A `ReferenceExecutor` that also keeps every op call it ran as a conformance `Case`: calls on
    float, int32, int64 and bool inputs. Int and bool graph inputs the nodes compute with (`feed_input`)
    and the int and bool results of op calls are device values (`DeviceValue`), so the ops on them run
    as recorded calls (Equal of two int32 inputs, Where with int64 values, ReduceMax of a bool tensor)
    instead of being folded on the host; constants and shapes still fold."""

    name = "recording"

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.cases: list = []

    def feed(self, array: np.ndarray) -> np.ndarray:
        return array if isinstance(array, DeviceValue) else super().feed(array)

    def feed_input(self, array: np.ndarray) -> np.ndarray:
        """A graph input the nodes compute with: an int or bool one becomes a `DeviceValue`."""
        array = self.feed(array)
        return array.view(DeviceValue) if array.dtype in VALUE_DTYPES else array

    def host(self, value: Any) -> bool:
        return not isinstance(value, DeviceValue) and super().host(value)

    def cast(self, value: Any, dtype: np.dtype) -> Any:
        out = super().cast(value, dtype)
        return out.view(DeviceValue) if isinstance(value, DeviceValue) and out.dtype in VALUE_DTYPES else out

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        result = super().__call__(op, *inputs, **attrs)  # only valid calls are recorded
        inputs, attrs = kernel_call(self._ops[op], inputs, attrs)
        if all(a is None or np.asarray(a).dtype.kind == "f" or np.asarray(a).dtype in VALUE_DTYPES for a in inputs):
            ins = tuple(None if a is None else _recorded_input(a) for a in inputs)
            self.cases.append(Case(op, ins, dict(attrs), seed=len(self.cases), source=self.prefix))
        return _device_results(result)


def _device_results(result: Any) -> Any:
    """An op's int and bool outputs as `DeviceValue` (floats are device values for the executor anyway)."""
    if isinstance(result, tuple):
        return tuple(_device_results(r) for r in result)
    arr = np.asarray(result)
    return arr.view(DeviceValue) if arr.dtype in VALUE_DTYPES else result


_CONFORMANCE: Optional[tuple] = None


def conformance_cases() -> list:
    """Every op call that ONNX's test graphs make (first data set of each) on float, int32, int64 or bool
    inputs, as conformance cases named ``onnx:<test>`` (int and bool inputs keep their dtype and are
    compared exactly); graphs that do not translate (1-D/3-D ops, ops we lack) are left out.
    Built once per process (loading ONNX's node tests takes a few seconds)."""
    global _CONFORMANCE
    if _CONFORMANCE is None:
        cases = []
        for case in load_cases():
            recorder = RecordingExecutor(f"onnx:{case.name}")
            computed = device_inputs(case)
            feeds = {n: recorder.feed_input(v) if n in computed else v for n, v in case.data_sets[0][0].items()}
            try:
                with np.errstate(all="ignore"):
                    run_graph(case, feeds, recorder)
            except Exception:  # not expressible with our ops (see the skip rules of the reference test)
                continue
            cases.extend(recorder.cases)
        _CONFORMANCE = tuple(cases)
    return list(_CONFORMANCE)
