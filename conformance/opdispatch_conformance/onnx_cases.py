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
device. The translation is written from the ONNX operator specification, independently of
opdispatch's own helpers (e.g. SAME_LOWER padding is computed here, not with opdispatch.shapes).
"""

from __future__ import annotations

import glob
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import onnx
import opdispatch as od
from onnx import helper, numpy_helper
from onnx.backend.test.loader import load_model_tests
from opdispatch.ops import OPS

from .cases import Case, In

#: The ONNX ops this suite checks: every op with an opdispatch counterpart (Gemm as matmul + add).
COVERED_OPS = (
    "Conv", "MaxPool", "AveragePool", "BatchNormalization", "MatMul", "Gemm",
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Add", "Sub", "Mul", "Div",
    "Softmax", "LogSoftmax", "Reshape", "Transpose", "Flatten", "ReduceSum", "ReduceMean", "ReduceMax",
)

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

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        schema = self._ops[op]
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
            if r.dtype != np.float64:
                raise AssertionError(f"{op}: reference output {i} has dtype {r.dtype}, expected float64")
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

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        with self._od.device(self.device):
            return getattr(self._od, op)(*inputs, **attrs)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)


# --------------------------------------------------------------------------------------------
# Translation of ONNX nodes into opdispatch op calls
# --------------------------------------------------------------------------------------------

Handler = Callable[[Any, list, dict, int], Any]


def node_attrs(node: onnx.NodeProto) -> dict:
    """The node's attributes as Python values (strings decoded)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in v.shape)


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def same_pads(size: int, k: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """ONNX auto_pad SAME_UPPER / SAME_LOWER for one axis (the ONNX spec): output ceil(size / stride),
    total padding ``(out - 1) * stride + dilation * (k - 1) + 1 - size``; an odd total puts the
    extra element at the end (UPPER) or at the beginning (LOWER)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def onnx_padding(a: dict, hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> Any:
    """ONNX ``auto_pad``/``pads`` as our ``padding`` argument. ONNX pads are
    [top, left, bottom, right] (all begins, then all ends); ours ((top, bottom), (left, right))."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "VALID"
    if auto == "SAME_UPPER":  # TensorFlow's SAME, which our "SAME" is
        return "SAME"
    if auto == "SAME_LOWER":
        return tuple(same_pads(hw[i], kernel[i], stride[i], dilation[i], lower=True) for i in range(2))
    if auto != "NOTSET":
        raise NotImplementedError(f"auto_pad {auto!r}")
    p = a.get("pads", [0, 0, 0, 0])
    return ((p[0], p[2]), (p[1], p[3]))


def _conv(ex, args, a, opset):
    x, w, b = (list(args) + [None, None])[:3]
    kernel = _shape(w)[2:]
    if "kernel_shape" in a:
        if tuple(a["kernel_shape"]) != kernel:
            raise ValueError(f"kernel_shape {a['kernel_shape']} disagrees with the weights {kernel}")
    stride = tuple(a.get("strides", (1, 1)))
    dilation = tuple(a.get("dilations", (1, 1)))
    padding = onnx_padding(a, _shape(x)[2:], kernel, stride, dilation)
    return ex("conv2d", x, w, b, stride=stride, padding=padding, dilation=dilation, groups=a.get("group", 1))


def _pool_common(x, a):
    kernel = tuple(a["kernel_shape"])
    stride = tuple(a.get("strides", (1, 1)))  # ONNX's default stride is 1, not the kernel size
    dilation = tuple(a.get("dilations", (1, 1)))
    padding = onnx_padding(a, _shape(x)[2:], kernel, stride, dilation)
    return kernel, stride, dilation, padding, bool(a.get("ceil_mode", 0))


def _max_pool(ex, args, a, opset):
    # Only output 0 (the values); an optional Indices output is left uncomputed (see IGNORED_OUTPUTS).
    kernel, stride, dilation, padding, ceil_mode = _pool_common(args[0], a)
    return ex("max_pool2d", args[0], kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)


def _avg_pool(ex, args, a, opset):
    kernel, stride, dilation, padding, ceil_mode = _pool_common(args[0], a)
    if dilation != (1, 1):
        raise NotImplementedError("AveragePool dilations: avg_pool2d has no dilation argument")
    return ex("avg_pool2d", args[0], kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=bool(a.get("count_include_pad", 0)))  # ONNX's default is 0


def _batch_norm(ex, args, a, opset):
    x, scale, bias, mean, var = args[:5]
    # Inference only (training is a skip rule): momentum plays no part.
    return ex("batch_norm", x, mean, var, scale, bias, training=False, eps=float(a.get("epsilon", 1e-5)))


def _gemm(ex, args, a, opset):
    A, B = args[0], args[1]
    C = args[2] if len(args) > 2 else None
    if a.get("transA", 0):
        A = ex("transpose", A, axes=(1, 0))
    if a.get("transB", 0):
        B = ex("transpose", B, axes=(1, 0))
    y = ex("matmul", A, B)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        y = ex("mul", y, ex.scalar(alpha, y))
    if C is not None:  # C broadcasts to (M, N) (opset 6's broadcast=1 is NumPy's suffix rule here)
        if beta != 1.0:
            C = ex("mul", C, ex.scalar(beta, C))
        y = ex("add", y, C)
    return y


def _softmax_family(op):
    def handler(ex, args, a, opset):
        x = args[0]
        shape = _shape(x)
        if opset >= 13:  # one axis, default -1: exactly ours
            return ex(op, x, axis=a.get("axis", -1))
        # Opset < 13: coerce x to 2-D at `axis` (default 1), normalise the rows, restore the shape.
        axis = a.get("axis", 1) % len(shape)
        if axis == len(shape) - 1:
            return ex(op, x, axis=-1)
        flat = ex("reshape", x, shape=(math.prod(shape[:axis]), math.prod(shape[axis:])))
        return ex("reshape", ex(op, flat, axis=1), shape=shape)
    return handler


def _reshape(ex, args, a, opset):
    x = args[0]
    target = list(a["shape"]) if opset < 5 else _ints(args[1])
    if not a.get("allowzero", 0):  # 0 copies the input's dimension
        in_shape = _shape(x)
        target = [in_shape[i] if d == 0 else d for i, d in enumerate(target)]
    return ex("reshape", x, shape=tuple(target))


def _transpose(ex, args, a, opset):
    perm = a.get("perm")
    return ex("transpose", args[0], axes=None if perm is None else tuple(perm))


def _flatten(ex, args, a, opset):
    # ONNX Flatten(axis) is always 2-D: (prod(shape[:axis]), prod(shape[axis:])). Ours keeps the
    # leading axes, so merge them with a reshape afterwards.
    x = args[0]
    shape = _shape(x)
    axis = a.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    lead, rest = math.prod(shape[:axis]), math.prod(shape[axis:])
    if axis == len(shape):
        return ex("reshape", x, shape=(lead, 1))
    y = ex("flatten", x, start_axis=axis)
    return y if _shape(y) == (lead, rest) else ex("reshape", y, shape=(lead, rest))


# The opset from which each reduction takes its axes as an input instead of an attribute.
_AXES_AS_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18}


def _reduce(onnx_op, op):
    def handler(ex, args, a, opset):
        if opset >= _AXES_AS_INPUT_SINCE[onnx_op]:
            axes = _ints(args[1]) if len(args) > 1 and args[1] is not None else []
        else:
            axes = list(a.get("axes", []))
        if axes:
            axis: Optional[tuple[int, ...]] = tuple(axes)
        else:  # no axes: every axis, or (noop_with_empty_axes) none, which is our axis=()
            axis = () if a.get("noop_with_empty_axes", 0) else None
        return ex(op, args[0], axis=axis, keepdims=bool(a.get("keepdims", 1)))
    return handler


def _binary(op):
    def handler(ex, args, a, opset):
        x, y = args
        if opset < 7 and a.get("broadcast", 0) and "axis" in a:
            # Legacy broadcasting: y's dimensions line up with x's from `axis` on.
            rank, y_shape = len(_shape(x)), _shape(y)
            axis = a["axis"] % rank
            trailing = rank - axis - len(y_shape)
            if trailing > 0:
                y = ex("reshape", y, shape=y_shape + (1,) * trailing)
        return ex(op, x, y)
    return handler


def _unary(op):
    return lambda ex, args, a, opset: ex(op, args[0])


def _constant(ex, args, a, opset):
    if "value" in a:
        return ex.feed(numpy_helper.to_array(a["value"]))
    if "value_float" in a:
        return ex.feed(np.asarray(a["value_float"], dtype=np.float32))
    if "value_floats" in a:
        return ex.feed(np.asarray(a["value_floats"], dtype=np.float32))
    if "value_int" in a:
        return np.asarray(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.asarray(a["value_ints"], dtype=np.int64)
    raise NotImplementedError(f"Constant with attributes {sorted(a)}")


def _unsqueeze(ex, args, a, opset):
    x = args[0]
    axes = list(a["axes"]) if opset < 13 else _ints(args[1])
    shape = list(_shape(x))
    out_rank = len(shape) + len(axes)
    for ax in sorted(ax % out_rank for ax in axes):
        shape.insert(ax, 1)
    return ex("reshape", x, shape=tuple(shape))


def _squeeze(ex, args, a, opset):
    x = args[0]
    shape = _shape(x)
    axes = a.get("axes") if opset < 13 else (_ints(args[1]) if len(args) > 1 and args[1] is not None else None)
    if axes is None:
        new = tuple(d for d in shape if d != 1)
    else:
        drop = {ax % len(shape) for ax in axes}
        new = tuple(d for i, d in enumerate(shape) if i not in drop)
    return ex("reshape", x, shape=new)


def _sum(ex, args, a, opset):  # variadic Sum: a chain of adds
    y = args[0]
    for v in args[1:]:
        y = ex("add", y, v)
    return y


#: ONNX op type -> translation into opdispatch op calls. An op type missing here is a skip rule.
TRANSLATORS: dict[str, Handler] = {
    "Conv": _conv,
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "BatchNormalization": _batch_norm,
    "MatMul": lambda ex, args, a, opset: ex("matmul", args[0], args[1]),
    "Gemm": _gemm,
    "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"), "Tanh": _unary("tanh"), "Exp": _unary("exp"),
    "Log": _unary("log"), "Sqrt": _unary("sqrt"), "Neg": _unary("neg"),
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _binary("div"),
    "Softmax": _softmax_family("softmax"), "LogSoftmax": _softmax_family("log_softmax"),
    "Reshape": _reshape, "Transpose": _transpose, "Flatten": _flatten,
    "ReduceSum": _reduce("ReduceSum", "sum"), "ReduceMean": _reduce("ReduceMean", "mean"),
    "ReduceMax": _reduce("ReduceMax", "max"),
    # glue that the PyTorch exports and the expanded function bodies use, written with our ops
    "Constant": _constant,
    "Identity": lambda ex, args, a, opset: args[0],
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Sum": _sum,
}


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


class RecordingExecutor(ReferenceExecutor):
    """A `ReferenceExecutor` that also keeps every op call it ran as a conformance `Case`."""

    name = "recording"

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.cases: list = []

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        result = super().__call__(op, *inputs, **attrs)  # only valid calls are recorded
        if all(a is None or np.asarray(a).dtype.kind == "f" for a in inputs):
            ins = tuple(None if a is None else In(tuple(np.shape(a)), "array",
                                                  values=tuple(np.asarray(a, np.float64).ravel().tolist()))
                        for a in inputs)
            self.cases.append(Case(op, ins, dict(attrs), seed=len(self.cases), source=self.prefix))
        return result


_CONFORMANCE: Optional[tuple] = None


def conformance_cases() -> list:
    """Every op call that ONNX's test graphs make (first data set of each), as conformance cases
    named ``onnx:<test>``; graphs that do not translate (1-D/3-D ops, ops we lack) are left out.
    Built once per process (loading ONNX's node tests takes a few seconds)."""
    global _CONFORMANCE
    if _CONFORMANCE is None:
        cases = []
        for case in load_cases():
            recorder = RecordingExecutor(f"onnx:{case.name}")
            try:
                with np.errstate(all="ignore"):
                    run_graph(case, case.data_sets[0][0], recorder)
            except Exception:  # not expressible with our ops (see the skip rules of the reference test)
                continue
            cases.extend(recorder.cases)
        _CONFORMANCE = tuple(cases)
    return list(_CONFORMANCE)
