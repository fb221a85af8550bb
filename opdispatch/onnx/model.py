"""`load`: an ONNX model as an opdispatch model object (`OnnxModel`).

Reading: a path (a regular file, read whole, parsed with protobuf: no pickle, no network) or an
``onnx.ModelProto``. Tensors stored as external data are read only from files beside the model
(relative paths that stay inside the model's directory once symlinks are resolved); a ModelProto
with external data that was not loaded is refused (pass its path instead).

Import: every node's op type is checked against the translation table
(`opdispatch.onnx.translate.TRANSLATORS`); one `OnnxImportError` lists every unsupported op type
with the names of its nodes. Float initializers read as tensors become `OnnxModel.params`; the
others (shapes, indices, and floats read only as bounds or pad values) stay host constants.
Nodes whose inputs are all constants (Constant, ConstantOfShape, Shape arithmetic, Cast,
Identity...) are folded on the host now; Shape of a runtime value is computed on the host when
the model runs (from the tensor's shape, so it is resolved once per traced signature under
``od.function``), never as a device op.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Optional, Union

import numpy as np

from .. import api, recording
from .. import files
from ..device import Device
from ..errors import ArgumentTypeError, DTypeError, InvalidArgumentError, OpDispatchError, ShapeError
from ..placement import device as device_scope
from ..placement import get_device
from ..tensor import Tensor, tensor
from .errors import OnnxImportError, require_onnx
from .translate import HOST_INPUTS, MODE_DEPENDENT, TRANSLATORS, NodeAttrs, bn_training, node_attrs, onnx_dtype

MIN_OPSET, MAX_OPSET = 7, 21
"""The default-domain opsets the translations are written for."""

MAX_MODEL_BYTES = 2**31
"""The largest model file `load` reads by default (protobuf's own limit is 2 GiB)."""

_DEFAULT_DOMAINS = ("", "ai.onnx")


class _NeedsDevice(Exception):
    """Folding stops: the node calls an op (it is not shape arithmetic on constants)."""


class _Executor:
    """Runs the translations with the public ops (``od.<op>``, looked up when called) on the current
    device; host values are NumPy arrays (constants of the file and shapes)."""

    def __init__(self, training: bool = False) -> None:
        self.training = training

    def host(self, value: Any) -> bool:
        return isinstance(value, (np.ndarray, np.generic))

    def feed(self, array: np.ndarray) -> Any:
        return np.asarray(array)

    def scalar(self, value: float, like: Any) -> Any:
        return float(value)  # a weak scalar: it takes the tensor's dtype

    def cast(self, value: Any, dtype: np.dtype) -> Any:
        """A device tensor in ``dtype``: ``Tensor.astype`` (the ``cast`` op; eager and traced alike). A
        dtype no tensor has (uint8, string ...) is its `DTypeError`/`InvalidArgumentError` naming the
        dtypes allowed, with the node appended by `_run_node`."""
        return value if value.dtype == dtype else value.astype(dtype)

    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        fn = getattr(api, op, None)
        if fn is None:
            raise NotImplementedError(f"it needs od.{op}, which this version of opdispatch does not have")
        return fn(*inputs, **attrs)


class _FoldExecutor(_Executor):
    def __call__(self, op: str, *inputs: Any, **attrs: Any) -> Any:
        raise _NeedsDevice(op)


class _Node:
    __slots__ = ("name", "op_type", "inputs", "outputs", "attrs")

    def __init__(self, name: str, op_type: str, inputs: tuple, outputs: tuple, attrs: NodeAttrs) -> None:
        self.name, self.op_type, self.inputs, self.outputs, self.attrs = name, op_type, inputs, outputs, attrs

    def label(self) -> str:
        return f"{self.op_type} node {self.name!r}"


def _run_node(ex: Any, node: _Node, values: dict, opset: int) -> None:
    try:
        args = [values[n] if n else None for n in node.inputs]
    except KeyError as exc:
        raise OnnxImportError(f"{node.label()} reads {exc.args[0]!r}, an output that opdispatch's translation of "
                              f"its node does not compute (such as MaxPool's Indices)") from None
    try:
        outs = TRANSLATORS[node.op_type](ex, args, node.attrs, opset)
    except NotImplementedError as exc:
        raise OnnxImportError(f"{node.label()}: {exc}") from None
    except OpDispatchError as exc:
        if exc.args and isinstance(exc.args[0], str) and "ONNX node" not in exc.args[0]:
            exc.args = (f"{exc.args[0]}\n  in ONNX {node.label()}",) + exc.args[1:]
        raise
    outs = outs if isinstance(outs, tuple) else (outs,)
    for name, value in zip(node.outputs, outs):
        if name:
            values[name] = value


class InputSpec:
    """A declared input of the model: name, dtype (None when not declared) and shape (None per
    symbolic dimension, None for the whole shape when not declared)."""

    def __init__(self, name: str, dtype: Optional[np.dtype], shape: Optional[tuple]) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape

    def __repr__(self) -> str:
        dims = "?" if self.shape is None else "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {getattr(self.dtype, 'name', '?')}[{dims}]"


class OnnxModel:
    """An imported ONNX model: call it like a function.

    ``m(x)`` takes the inputs in the model's order (or by name, as keywords) and returns one tensor,
    or a tuple for several outputs. It runs on the device of its tensor inputs (NumPy inputs: the
    current ``od.device``); parameters on another device are copied there for the call (use `to`
    to move them for good, as training needs). ``m.params`` holds the float initializers by name:
    watch them with `od.GradientTape`, update them with an optimizer (``opt = od.Adam(m.params);
    m.params = opt.params`` shares the optimizer's dict, so every ``opt.step`` is seen by the next
    call). ``od.function(m)`` runs it as a graph whose parameters are inputs, so it follows updates
    too. ``m.train()`` / ``m.eval()`` set the mode of Dropout (and of the batch norms of the opsets
    that leave it to the runtime). A freshly loaded model runs its batch norms as the file says;
    after ``m.eval()`` the training-mode ones (a PyTorch training-mode export) normalise with their
    running statistics, as the PyTorch module would in eval mode, and leave them unchanged.
    `with_params` replaces parameters by tensors of other shapes (a new classifier head).
    """

    def __init__(self, *, name: str, opset: int, inputs: tuple, outputs: tuple, nodes: tuple,
                 constants: dict, params: dict, training: Optional[bool] = None, buffers: tuple = (),
                 running: tuple = ()) -> None:
        self.name = name
        self.opset = opset
        self.input_specs: tuple[InputSpec, ...] = inputs
        self.outputs: tuple[str, ...] = outputs
        self._nodes = nodes
        self._constants = constants
        self._params: dict[str, Tensor] = params
        self._copies: dict[Device, tuple[tuple, dict]] = {}
        self._mode: Optional[bool] = training  # None: as the file says (Dropout off); set by train()/eval()
        self._inference_nodes: Optional[tuple] = None
        self._buffers: tuple[str, ...] = buffers  # batch norms' running statistics (params, not trained)
        self._running: tuple[tuple[str, str], ...] = running  # (param, the output holding its new value)

    # -- parameters and placement -------------------------------------------------------------

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the inputs, in call order."""
        return tuple(s.name for s in self.input_specs)

    @property
    def params(self) -> dict[str, Tensor]:
        """Initializer name -> tensor (the float initializers): the trainable weights."""
        return self._params

    @params.setter
    def params(self, new: Mapping[str, Tensor]) -> None:
        if not isinstance(new, dict):
            raise ArgumentTypeError(f"OnnxModel.params: got {type(new).__name__}; allowed: a dict name -> tensor")
        for name, t in new.items():
            old = self._params.get(name)
            if old is None:
                raise InvalidArgumentError(f"OnnxModel.params: unknown parameter {name!r}; allowed: "
                                           f"{sorted(self._params)[:10]}...")
            if not isinstance(t, Tensor) or t.shape != old.shape or t.dtype != old.dtype:
                raise InvalidArgumentError(f"OnnxModel.params: {name!r} got {type(t).__name__} "
                                           f"{getattr(t, 'dtype', '')}{list(getattr(t, 'shape', ()))}; allowed: a "
                                           f"tensor of {old.dtype.name}{list(old.shape)}")
        missing = sorted(set(self._params) - set(new))
        if missing:
            raise InvalidArgumentError(f"OnnxModel.params: missing {missing[:10]}; allowed: every parameter")
        self._params = new  # kept, not copied: a dict shared with an optimizer stays shared

    @property
    def trainable(self) -> dict[str, Tensor]:
        """`params` without the batch norms' running means and variances (PyTorch's buffers): what
        an optimizer should update (in a training-mode batch norm the output does not depend on
        them, so a gradient with respect to them is an error)."""
        return {k: t for k, t in self._params.items() if k not in self._buffers}

    @property
    def buffers(self) -> tuple[str, ...]:
        """The names of the params that are batch-norm running statistics."""
        return tuple(b for b in self._buffers if b in self._params)

    def _replace(self, **changes: Any) -> "OnnxModel":
        fields: dict[str, Any] = {"name": self.name, "opset": self.opset, "inputs": self.input_specs,
                                  "outputs": self.outputs, "nodes": self._nodes, "constants": self._constants,
                                  "params": self._params, "training": self._mode, "buffers": self._buffers,
                                  "running": self._running}
        fields.update(changes)
        return OnnxModel(**fields)

    def with_params(self, new: Mapping[str, Tensor]) -> "OnnxModel":
        """The same model with the parameters named in ``new`` replaced by float tensors of any
        shape the graph accepts (unlike the `params` setter, which keeps shapes): a new classifier
        head, ``m.with_params({"fc.weight": w, "fc.bias": b})`` with ``w`` of shape (10, 512)."""
        if not isinstance(new, Mapping):
            raise ArgumentTypeError(f"OnnxModel.with_params: got {type(new).__name__}; allowed: a dict name -> tensor")
        for name, t in new.items():
            if name not in self._params:
                raise InvalidArgumentError(f"OnnxModel.with_params: unknown parameter {name!r}; allowed: "
                                           f"{sorted(self._params)[:10]}...")
            if not isinstance(t, Tensor) or t.dtype.kind != "f":
                raise InvalidArgumentError(f"OnnxModel.with_params: {name!r} got {type(t).__name__} "
                                           f"{getattr(t, 'dtype', '')}; allowed: a float tensor")
        return self._replace(params={**self._params, **new})

    def to(self, device: Union[str, Device]) -> "OnnxModel":
        """The same model with its parameters on ``device``."""
        dev = Device(device)
        return self._replace(params={k: t.to(dev) for k, t in self._params.items()})

    def astype(self, dtype: Any) -> "OnnxModel":
        """The same model computing in float ``dtype``: float parameters, constants and declared float
        inputs converted (``m.astype("float64")`` on ``reference:0`` is the conformance oracle)."""
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise DTypeError(f"OnnxModel.astype: got {dt.name}; allowed: a float dtype")
        consts = {k: v.astype(dt) if v.dtype.kind == "f" else v for k, v in self._constants.items()}
        params = {k: tensor(t.numpy().astype(dt), device=t.device) for k, t in self._params.items()}
        specs = tuple(InputSpec(s.name, dt if s.dtype is not None and s.dtype.kind == "f" else s.dtype, s.shape)
                      for s in self.input_specs)
        return self._replace(constants=consts, params=params, inputs=specs)

    @property
    def training(self) -> bool:
        """Whether the model is in training mode (Dropout drops); assignable, as `train` does."""
        return bool(self._mode)

    @training.setter
    def training(self, mode: bool) -> None:
        self._mode = bool(mode)

    def train(self, mode: bool = True) -> "OnnxModel":
        """Set training mode (Dropout drops; batch norms as the file says); returns the model."""
        self._mode = bool(mode)
        return self

    def eval(self) -> "OnnxModel":
        """Set inference mode: Dropout is the identity, and training-mode batch norms use their
        running statistics (their running-statistics outputs are the inputs, unchanged); returns the
        model. Under ``od.function`` the mode is read when a signature is traced."""
        return self.train(False)

    def _nodes_now(self) -> tuple:
        """The nodes to run in the current mode: in explicit inference mode, each batch norm that
        would normalise with batch statistics becomes an inference one (with a note to pass its
        running statistics through)."""
        if self._mode is not False:
            return self._nodes
        if self._inference_nodes is None:
            nodes: list = []
            for node in self._nodes:
                if node.op_type == "BatchNormalization" and bn_training(node.attrs, self.opset):
                    attrs = NodeAttrs(node.attrs)
                    attrs["training_mode"], attrs["is_test"] = 0, 1
                    attrs.outputs = node.attrs.outputs[:1]
                    nodes.append(_Node(node.name, node.op_type, node.inputs, node.outputs[:1], attrs))
                    nodes += [(out, src) for out, src in zip(node.outputs[1:3], node.inputs[3:5]) if out]
                else:
                    nodes.append(node)
            self._inference_nodes = tuple(nodes)
        return self._inference_nodes

    def _params_on(self, dev: Device) -> dict[str, Tensor]:
        params = self._params
        if all(t.device == dev for t in params.values()):
            return params
        key = tuple(id(t) for t in params.values())
        hit = self._copies.get(dev)
        if hit is None or hit[0] != key:
            hit = self._copies[dev] = (key, {k: t.to(dev) for k, t in params.items()})
        return hit[1]

    # -- running ------------------------------------------------------------------------------

    def _bind(self, args: tuple, named: dict) -> dict[str, Any]:
        names = self.inputs
        if len(args) > len(names):
            raise InvalidArgumentError(f"OnnxModel {self.name!r}: got {len(args)} inputs; allowed: {len(names)} "
                                       f"({', '.join(names)})")
        bound = dict(zip(names, args))
        for k, v in named.items():
            if k not in names:
                raise InvalidArgumentError(f"OnnxModel {self.name!r}: unknown input {k!r}; allowed: "
                                           f"{', '.join(names)}")
            if k in bound:
                raise InvalidArgumentError(f"OnnxModel {self.name!r}: input {k!r} given twice")
            bound[k] = v
        missing = [n for n in names if n not in bound]
        if missing:
            raise InvalidArgumentError(f"OnnxModel {self.name!r}: missing input(s) {missing}; the model takes "
                                       f"{', '.join(map(repr, self.input_specs))}")
        return bound

    def _home(self, bound: dict) -> Device:
        return next((v.device for v in bound.values() if isinstance(v, Tensor)), None) or get_device()

    def _check_input(self, spec: InputSpec, value: Any, dev: Device) -> Tensor:
        if not isinstance(value, Tensor):
            arr = np.asarray(value)
            if spec.dtype is not None and arr.dtype != spec.dtype and arr.dtype.kind in "fiub" \
                    and (arr.dtype.kind == spec.dtype.kind or spec.dtype.kind == "f"):
                arr = arr.astype(spec.dtype)  # NumPy data in the model's dtype (float64 arrays for a float32 model)
            value = tensor(arr, device=dev)
        elif spec.dtype is not None and value.dtype != spec.dtype:
            raise DTypeError(f"OnnxModel {self.name!r}: input {spec.name!r} has dtype {value.dtype.name}; allowed: "
                             f"{spec.dtype.name} (as the model declares)")
        if spec.shape is not None:
            shape = tuple(value.shape)
            if len(shape) != len(spec.shape) or any(d is not None and d != s for d, s in zip(spec.shape, shape)):
                raise ShapeError(f"OnnxModel {self.name!r}: input {spec.name!r} has shape {shape}; allowed: "
                                 f"{spec!r}")
        return value

    def apply(self, params: Mapping[str, Any], *args: Any, **named: Any) -> Any:
        """Run the model with ``params`` in place of `params` (a pure function of its arguments:
        ``od.function(m.apply)(m.params, x)`` traces the parameters as inputs)."""
        return self._apply(params, args, named, None)

    def apply_with_stats(self, params: Mapping[str, Any], *args: Any, **named: Any) -> tuple[Any, dict[str, Tensor]]:
        """`apply`, also returning the new running statistics of the training-mode batch norms
        (param name -> tensor; empty in inference mode). Pure, so under ``od.function`` they are
        outputs of the graph (which an eager call of the model writes back by itself, a traced one
        does not): store them with ``m.params = {**m.params, **stats}``."""
        updates: dict = {}
        out = self._apply(params, args, named, updates)
        return out, {k: v for k, v in updates.items() if isinstance(v, Tensor)}

    def _apply(self, params: Mapping[str, Any], args: tuple, named: dict, updates: Optional[dict]) -> Any:
        bound = self._bind(args, named)
        dev = self._home(bound)
        with device_scope(dev):
            values: dict[str, Any] = dict(self._constants)
            values.update(params)
            for spec in self.input_specs:
                values[spec.name] = self._check_input(spec, bound[spec.name], dev)
            ex = _Executor(self.training)
            with np.errstate(all="ignore"):
                for node in self._nodes_now():
                    if isinstance(node, tuple):  # (output, input): a running statistic passed through
                        values[node[0]] = values[node[1]]
                    else:
                        _run_node(ex, node, values, self.opset)
            if updates is not None and self._mode is not False:
                updates.update({param: values[out] for param, out in self._running if out in values})
            outs = []
            for name in self.outputs:
                v = values[name]
                outs.append(tensor(v, device=dev) if not isinstance(v, Tensor) else v)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __call__(self, *args: Any, **named: Any) -> Any:
        """Run the model (see the class). An eager call through training-mode batch norms stores
        their new running statistics in `params` (as a PyTorch module updates its buffers); a traced
        one (``od.function``) does not."""
        bound = self._bind(args, named)
        params = self._params_on(self._home(bound))
        tracing = any(getattr(r, "symbolic", False) for r in recording.active())
        updates: Optional[dict] = {} if self._running and params is self._params and not tracing else None
        result = self._apply(params, (), bound, updates)
        if updates:
            self._params.update({k: v for k, v in updates.items() if isinstance(v, Tensor)})
        return result

    def __od_function__(self) -> tuple:
        """For ``od.function(m)``: the pure function and the state it reads at each call, so the
        graph takes the current parameters as inputs."""
        def state() -> dict[str, Tensor]:
            return self._params

        return self.apply, state

    def __repr__(self) -> str:
        n = sum(int(np.prod(t.shape)) for t in self._params.values())
        return (f"OnnxModel({self.name!r}, opset {self.opset}, inputs [{', '.join(map(repr, self.input_specs))}], "
                f"outputs {list(self.outputs)}, {len(self._nodes)} nodes, {len(self._params)} params ({n} values))")


# --------------------------------------------------------------------------------------------
# Reading and checking
# --------------------------------------------------------------------------------------------


def _read_model(onnx: Any, source: Any, max_bytes: int) -> tuple[Any, Optional[str]]:
    if isinstance(source, onnx.ModelProto):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise ArgumentTypeError(f"od.onnx.load: argument 'source' got {type(source).__name__}; allowed: a path or "
                                f"an onnx.ModelProto")
    path = os.fspath(source)
    try:
        fh, size = files.open_regular(path, max_bytes)
        with fh:
            data = files.read_all(fh, size)
    except files.FileFault as exc:
        raise OnnxImportError(f"od.onnx.load: {path!r}: {exc.what}") from None
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise OnnxImportError(f"od.onnx.load: {path!r} is not an ONNX model (protobuf could not parse it: "
                              f"{type(exc).__name__}: {exc})") from None
    return model, os.path.dirname(os.path.abspath(path))


def _external_tensors(onnx: Any, model: Any) -> list:
    out = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_location == onnx.TensorProto.EXTERNAL:
                out.append(attr.t)
    return out


def _load_external(onnx: Any, model: Any, base: Optional[str]) -> None:
    """Read external data from files beside the model (paths inside its directory only)."""
    tensors = _external_tensors(onnx, model)
    if not tensors:
        return
    if base is None:
        raise OnnxImportError(f"od.onnx.load: the ModelProto keeps {len(tensors)} tensor(s) in external data files "
                              f"(e.g. {tensors[0].name!r}); pass the model's path, so that they are read from "
                              f"beside it")
    root = os.path.realpath(base)
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        full = os.path.realpath(os.path.join(root, loc))
        if not loc or os.path.isabs(loc) or os.path.commonpath([root, full]) != root:
            raise OnnxImportError(f"od.onnx.load: tensor {t.name!r}: external data location {loc!r} is not a file "
                                  f"beside the model; allowed: relative paths inside {root}")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
            fh, size = files.open_regular(full, MAX_MODEL_BYTES * 8)
            with fh:
                if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
                    raise OnnxImportError(f"od.onnx.load: tensor {t.name!r}: external data offset {offset} / length "
                                          f"{length} outside {loc!r} ({size} bytes)")
                fh.seek(offset)
                data = fh.read(size - offset if length is None else length)
        except files.FileFault as exc:
            raise OnnxImportError(f"od.onnx.load: tensor {t.name!r}: external data {loc!r}: {exc.what}") from None
        except ValueError as exc:
            raise OnnxImportError(f"od.onnx.load: tensor {t.name!r}: bad external data entry: {exc}") from None
        t.raw_data = data
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT


def _opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    raise OnnxImportError(f"od.onnx.load: model {model.graph.name!r} imports no opset of the default ONNX domain")


def _unsupported(model: Any) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    for i, node in enumerate(model.graph.node):
        key = node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}:{node.op_type}"
        if node.domain not in _DEFAULT_DOMAINS or node.op_type not in TRANSLATORS:
            missing.setdefault(key, []).append(node.name or f"#{i}")
    return missing


def _describe_missing(missing: dict[str, list[str]]) -> str:
    parts = []
    for op, names in sorted(missing.items()):
        shown = ", ".join(repr(n) for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        parts.append(f"  {op} ({len(names)} node{'s' if len(names) > 1 else ''}: {shown})")
    return "\n".join(parts)


def _spec(onnx: Any, vi: Any) -> InputSpec:
    tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if tt is None:
        raise OnnxImportError(f"od.onnx.load: input {vi.name!r} is not a tensor (sequences, maps and optionals are "
                              f"not supported)")
    dtype = onnx_dtype(tt.elem_type) if tt.elem_type else None
    shape = None
    if tt.HasField("shape"):
        shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim)
    return InputSpec(vi.name, dtype, shape)


def read_model(source: Any, *, max_bytes: int = MAX_MODEL_BYTES) -> Any:
    """The ``onnx.ModelProto`` of a path (or the given ModelProto), its external data read from
    beside it; `OnnxImportError` for a file that is not a readable ONNX model. Nothing is
    translated or checked (see `load`)."""
    onnx: Any = require_onnx("od.onnx.read_model")
    max_bytes = files.size_limit(max_bytes, MAX_MODEL_BYTES, "od.onnx.read_model", OnnxImportError)
    model, base = _read_model(onnx, source, max_bytes)
    _load_external(onnx, model, base)
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        where = repr(os.fspath(source)) if base is not None else "the ModelProto"
        raise OnnxImportError(f"od.onnx.load: {where} holds no graph (not an ONNX model, or an empty one)")
    return model


def load(source: Any, *, device: Union[str, Device, None] = None, max_bytes: int = MAX_MODEL_BYTES,
         check: bool = True) -> OnnxModel:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as an `OnnxModel`.

    ``device``: where the parameters live (default: the current ``od.device``). ``check``: run
    ``onnx.checker`` first. Raises `OnnxImportError` for a file that is not a readable ONNX
    model and, once, listing every unsupported op type with its nodes' names.
    """
    onnx: Any = require_onnx("od.onnx.load")
    from onnx import numpy_helper

    model = read_model(source, max_bytes=max_bytes)
    opset = _opset(model)
    if opset < MIN_OPSET:
        raise OnnxImportError(f"od.onnx.load: model {model.graph.name!r} uses opset {opset}; allowed: opsets "
                              f"{MIN_OPSET} to {MAX_OPSET} (convert it with onnx.version_converter)")
    if opset > MAX_OPSET:
        warnings.warn(f"od.onnx.load: model {model.graph.name!r} uses opset {opset}, newer than the translations "
                      f"(written for opsets {MIN_OPSET} to {MAX_OPSET}); ops whose meaning changed may differ",
                      stacklevel=2)
    missing = _unsupported(model)
    if missing:
        n = sum(len(v) for v in missing.values())
        raise OnnxImportError(f"od.onnx.load: model {model.graph.name!r} uses {len(missing)} ONNX op type(s) that "
                              f"opdispatch does not translate ({n} node(s)):\n{_describe_missing(missing)}")
    if check:
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx.checker.ValidationError, and protobuf errors of odd models
            raise OnnxImportError(f"od.onnx.load: model {model.graph.name!r} fails onnx.checker: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                                  ) from None
    return _build(onnx, numpy_helper, model, opset, device)


def _build(onnx: Any, numpy_helper: Any, model: Any, opset: int, device: Any) -> OnnxModel:
    graph = model.graph
    dev = Device(device) if device is not None else get_device()
    constants: dict[str, np.ndarray] = {}
    params: dict[str, Tensor] = {}
    tensor_uses: set[str] = set()  # values some node reads as a tensor (not as a shape, axes, bound...)
    for n in graph.node:
        host = HOST_INPUTS.get(n.op_type, ())
        tensor_uses.update(name for i, name in enumerate(n.input) if name and i not in host)
    tensor_uses.update(o.name for o in graph.output)
    for init in graph.initializer:
        try:
            arr = numpy_helper.to_array(init)
        except Exception as exc:
            raise OnnxImportError(f"od.onnx.load: initializer {init.name!r} cannot be read: {exc}") from None
        if arr.dtype.kind == "f" and init.name in tensor_uses:
            params[init.name] = tensor(np.ascontiguousarray(arr), device=dev)
        else:
            constants[init.name] = arr
    init_names = set(params) | set(constants)
    inputs = tuple(_spec(onnx, vi) for vi in graph.input if vi.name not in init_names)
    outputs = tuple(vo.name for vo in graph.output)
    nodes = []
    for i, n in enumerate(graph.node):
        nodes.append(_Node(n.name or f"#{i}", n.op_type, tuple(n.input), tuple(n.output), node_attrs(n)))
    known = init_names | {s.name for s in inputs}
    for node in nodes:  # every input must be produced before use (ONNX requires topological order)
        for name in node.inputs:
            if name and name not in known:
                raise OnnxImportError(f"od.onnx.load: {node.label()} reads {name!r}, which no earlier node, input "
                                      f"or initializer defines")
        known.update(o for o in node.outputs if o)
    for name in outputs:
        if name not in known:
            raise OnnxImportError(f"od.onnx.load: graph output {name!r} is never computed")
    # Fold what depends on constants only, on the host (shape arithmetic, Constant, ConstantOfShape...).
    folder = _FoldExecutor()
    runtime = []
    for node in nodes:
        if node.op_type not in MODE_DEPENDENT and all(not n or n in constants for n in node.inputs):
            try:
                with np.errstate(all="ignore"):
                    args = [constants[n] if n else None for n in node.inputs]
                    outs = TRANSLATORS[node.op_type](folder, args, node.attrs, opset)
                outs = outs if isinstance(outs, tuple) else (outs,)
                if all(isinstance(o, (np.ndarray, np.generic)) for o in outs):
                    constants.update({k: np.asarray(v) for k, v in zip(node.outputs, outs) if k})
                    continue
            except (_NeedsDevice, NotImplementedError, ValueError, TypeError, IndexError):
                pass  # left to run time, where the error (if any) names the node
        runtime.append(node)
    # Keep only the nodes an output needs.
    needed = set(outputs)
    live = []
    for node in reversed(runtime):
        if any(o in needed for o in node.outputs if o):
            live.append(node)
            needed.update(n for n in node.inputs if n)
    live.reverse()
    constants = {k: v for k, v in constants.items() if k in needed}
    params = {k: v for k, v in params.items() if k in needed}  # initializers no output depends on are dropped
    buffers, running = [], []
    for node in live:
        if node.op_type == "BatchNormalization":
            stats = [n for n in node.inputs[3:5] if n in params]
            buffers += stats
            if bn_training(node.attrs, opset):
                running += [(p, o) for p, o in zip(node.inputs[3:5], node.outputs[1:3]) if p in params and o]
    return OnnxModel(name=graph.name or "model", opset=opset, inputs=inputs, outputs=outputs, nodes=tuple(live),
                     constants=constants, params=params, buffers=tuple(buffers), running=tuple(running))
