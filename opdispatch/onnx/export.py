"""``od.onnx.export``: a traced function or an `od.Graph` as an ONNX model.

The function is traced on the example arguments (as ``od.function`` would), the device-independent
passes run (constant folding, CSE, dead code), and each node becomes ONNX nodes through the
table `EXPORTERS` (op name -> emitter), one entry per op. Shapes are static (a traced graph is
specialised to its input shapes). Constants, captured tensors and model parameters become
initializers. The result is checked with ``onnx.checker`` before it is written.

An op with no ONNX form (the backward ops of a training step, say) makes `OnnxExportError`, which
lists every such op with the user's lines that created it; nothing is written then.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..files import atomic_write
from ..graph.function import trace
from ..graph.ir import GraphIR, Node
from ..graph.pipeline import optimize, pass_options
from ..ops.pool import adaptive_windows
from .errors import OnnxExportError, require_onnx
from .translate import AXES_AS_INPUT_SINCE

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 21


def _onnx() -> Any:
    return require_onnx("od.onnx.export")


class _Builder:
    """Collects ONNX nodes and initializers while the graph's nodes are translated."""

    def __init__(self, onnx: Any, graph: GraphIR, opset: int) -> None:
        self.onnx, self.helper, self.graph, self.opset = onnx, onnx.helper, graph, opset
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, vid: Optional[int]) -> str:
        """The ONNX name of graph value ``vid`` ('' for an absent optional input)."""
        return "" if vid is None else f"v{vid}"

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, dtype: Any, hint: str = "const") -> str:
        """An initializer holding ``value`` (as ``dtype``); returns its name."""
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), np.int64, hint)

    def node(self, op_type: str, inputs: Sequence[str], outputs: Optional[Sequence[str]] = None,
             **attrs: Any) -> list[str]:
        """Append one ONNX node; ``outputs`` default to one fresh name. Returns the output names."""
        outs = list(outputs) if outputs is not None else [self.fresh(op_type.lower())]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"n_{op_type}"),
                                                **attrs))
        return outs

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: int = 1,
               outputs: Optional[Sequence[str]] = None) -> str:
        """A ReduceX node over ``axes``: as an input from the opset where ONNX made it one, else as
        the attribute (`opdispatch.onnx.translate.AXES_AS_INPUT_SINCE`); returns its output name."""
        if self.opset >= AXES_AS_INPUT_SINCE[op_type]:
            return self.node(op_type, [x, self.ints(axes, "axes")], outputs, keepdims=keepdims)[0]
        return self.node(op_type, [x], outputs, axes=list(axes), keepdims=keepdims)[0]

    def meta(self, vid: Optional[int]) -> Any:
        """The `ValueInfo` of graph value ``vid`` (a present input: the schemas say which may be absent)."""
        if vid is None:
            raise OnnxExportError("od.onnx.export: a required input of a node is absent (a malformed graph)")
        return self.graph.values[vid]


Emitter = Callable[[_Builder, Node, list, list], None]
"""``emit(builder, node, input_names, output_names)``: append the ONNX nodes of one graph node."""


def _pads(padding: Any) -> list[int]:
    (top, bottom), (left, right) = padding
    return [int(top), int(left), int(bottom), int(right)]


def _same(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        b.node(op_type, ins, outs)
    return emit


def _conv(b: _Builder, node: Node, ins: list, outs: list, relu: bool = False, clip: bool = False) -> None:
    a = node.attrs
    kshape = b.meta(node.inputs[1]).shape[2:]
    inputs = ins if ins[2] else ins[:2]
    target = [b.fresh("conv")] if relu or clip else outs
    b.node("Conv", inputs, target, kernel_shape=list(kshape), strides=list(a["stride"]), pads=_pads(a["padding"]),
           dilations=list(a["dilation"]), group=int(a["groups"]))
    if relu:
        b.node("Relu", target, outs)
    if clip:
        _clip_bounds(b, node, target, outs)


def _conv_backward_input(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """The input gradient of conv2d is a transposed convolution with the same weight."""
    a = node.attrs
    kh, kw = b.meta(node.inputs[1]).shape[2:]
    dy = b.meta(node.inputs[0]).shape
    pads = _pads(a["padding"])
    extra = []
    for i, (k, s, d) in enumerate(zip((kh, kw), a["stride"], a["dilation"])):
        natural = (dy[2 + i] - 1) * s - pads[i] - pads[i + 2] + d * (k - 1) + 1
        extra.append(int(a["input_shape"][2 + i] - natural))
    b.node("ConvTranspose", ins, outs, kernel_shape=[kh, kw], strides=list(a["stride"]), pads=pads,
           dilations=list(a["dilation"]), group=int(a["groups"]), output_padding=extra)


def _conv_transpose(b: _Builder, node: Node, ins: list, outs: list) -> None:
    a = node.attrs
    kshape = b.meta(node.inputs[1]).shape[2:]
    b.node("ConvTranspose", ins if ins[2] else ins[:2], outs, kernel_shape=list(kshape), strides=list(a["stride"]),
           pads=_pads(a["padding"]), dilations=list(a["dilation"]), group=int(a["groups"]),
           output_padding=list(a["output_padding"]))


def _adaptive_avg_pool(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """GlobalAveragePool, an AveragePool where the sizes divide, else the mean of each window's rows
    then columns (PyTorch's windows [floor(i*in/out), ceil((i+1)*in/out)))."""
    shape = b.meta(node.inputs[0]).shape
    oh, ow = node.attrs["output_size"]
    ih, iw = shape[2], shape[3]
    if (oh, ow) == (1, 1):
        b.node("GlobalAveragePool", ins, outs)
        return
    if ih % oh == 0 and iw % ow == 0:
        k = [ih // oh, iw // ow]
        b.node("AveragePool", ins, outs, kernel_shape=k, strides=k)
        return
    current = ins[0]
    for axis, (size, out_size) in enumerate(((ih, oh), (iw, ow)), start=2):
        if size == out_size:
            continue
        parts = []
        for start, end in adaptive_windows(size, out_size):
            part = b.node("Slice", [current, b.ints([start], "starts"), b.ints([end], "ends"),
                                    b.ints([axis], "axes")])[0]
            parts.append(b.reduce("ReduceMean", part, [axis]))
        current = b.node("Concat", parts, axis=axis)[0]
    b.node("Identity", [current], outs)


def _pool(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        a = node.attrs
        extra: dict = {"ceil_mode": int(a["ceil_mode"])}
        if op_type == "MaxPool":
            extra["dilations"] = list(a["dilation"])
        else:
            extra["count_include_pad"] = int(a["count_include_pad"])
        b.node(op_type, ins, outs, kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
               pads=_pads(a["padding"]), **extra)
    return emit


def _reduce(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        a = node.attrs
        axes = [int(x) for x in a["axis"]]
        keep = int(bool(a["keepdims"]))
        if not axes:  # nothing reduced (a 0-d input): the value itself
            b.node("Identity", ins, outs)
        else:
            b.reduce(op_type, ins[0], axes, keep, outs)
    return emit


def _reshape_to_output(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Reshape", [ins[0], b.ints(b.meta(node.outputs[0]).shape, "shape")], outs)


def _transpose(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Transpose", ins, outs, perm=[int(x) for x in node.attrs["axes"]])


def _softmax(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        b.node(op_type, ins, outs, axis=int(node.attrs["axis"]))
    return emit


def _broadcast_to(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Expand", [ins[0], b.ints(node.attrs["shape"], "shape")], outs)


def _slice(b: _Builder, node: Node, ins: list, outs: list) -> None:
    a = node.attrs
    ends = [(INT64_MAX if s > 0 else INT64_MIN) if e is None else int(e) for e, s in zip(a["ends"], a["steps"])]
    b.node("Slice", [ins[0], b.ints(a["starts"], "starts"), b.ints(ends, "ends"), b.ints(a["axes"], "axes"),
                     b.ints(a["steps"], "steps")], outs)


def _concat(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Concat", ins, outs, axis=int(node.attrs["axis"]))


def _pad(b: _Builder, node: Node, ins: list, outs: list) -> None:
    a = node.attrs
    rank = len(b.meta(node.inputs[0]).shape)
    pads = [(0, 0)] * (rank - len(a["pads"])) + [tuple(p) for p in a["pads"]]
    flat = [int(p[0]) for p in pads] + [int(p[1]) for p in pads]
    inputs = [ins[0], b.ints(flat, "pads")]
    if a["mode"] == "constant":
        inputs.append(b.const(a["value"], b.meta(node.inputs[0]).dtype, "pad_value"))
    b.node("Pad", inputs, outs, mode=a["mode"])


def _leaky_relu(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("LeakyRelu", ins, outs, alpha=float(node.attrs["negative_slope"]))


def _silu(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Mul", [ins[0], b.node("Sigmoid", ins)[0]], outs)


def _relu_backward(b: _Builder, node: Node, ins: list, outs: list) -> None:
    dtype = b.meta(node.inputs[0]).dtype
    zero = b.const(0, dtype, "zero")
    b.node("Where", [b.node("Greater", [ins[1], zero])[0], ins[0], zero], outs)


def _batch_norm(b: _Builder, node: Node, ins: list, outs: list) -> None:
    a = node.attrs
    shape = b.meta(node.inputs[0]).shape
    dtype = b.meta(node.inputs[0]).dtype
    channels = shape[1] if len(shape) > 1 else 1
    x, mean, var, weight, bias = ins
    weight = weight or b.const(np.ones(channels), dtype, "ones")
    bias = bias or b.const(np.zeros(channels), dtype, "zeros")
    if not a["training"]:
        b.node("BatchNormalization", [x, weight, bias, mean, var], outs, epsilon=float(a["eps"]))
        return
    # training: batch statistics, and PyTorch's running update (the running variance takes the unbiased
    # batch variance, which ONNX's training_mode does not), written out with elementary ONNX ops
    axes = [0] + list(range(2, len(shape)))
    count = int(np.prod([shape[i] for i in axes]))
    view = b.ints([1, channels] + [1] * (len(shape) - 2), "bn_view")

    mu = b.reduce("ReduceMean", x, axes)
    centred = b.node("Sub", [x, mu])[0]
    var_b = b.reduce("ReduceMean", b.node("Mul", [centred, centred])[0], axes)
    denom = b.node("Sqrt", [b.node("Add", [var_b, b.const(a["eps"], dtype, "eps")])[0]])[0]
    normed = b.node("Div", [centred, denom])[0]
    scaled = b.node("Mul", [normed, b.node("Reshape", [weight, view])[0]])[0]
    b.node("Add", [scaled, b.node("Reshape", [bias, view])[0]], [outs[0]])
    flat = b.ints([channels], "bn_flat")
    m = float(a["momentum"])
    keep_w, new_w = b.const(1.0 - m, dtype, "bn_keep"), b.const(m, dtype, "bn_new")
    mu_c = b.node("Reshape", [mu, flat])[0]
    unbiased = b.node("Mul", [b.node("Reshape", [var_b, flat])[0],
                              b.const(count / max(count - 1, 1), dtype, "bn_bessel")])[0]
    for running, stat, out in ((mean, mu_c, outs[1]), (var, unbiased, outs[2])):
        b.node("Add", [b.node("Mul", [running, keep_w])[0], b.node("Mul", [stat, new_w])[0]], [out])


def _softmax_cross_entropy(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("SoftmaxCrossEntropyLoss", ins, outs, reduction="mean")


def _clip(b: _Builder, node: Node, ins: list, outs: list) -> None:
    _clip_bounds(b, node, ins[:1], outs)


def _clip_bounds(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """A Clip of ``ins[0]`` with ``node``'s min and max attributes (clip's or conv2d_bias_clip's)."""
    dtype = b.meta(node.inputs[0]).dtype
    bounds = [("" if node.attrs[k] is None else b.const(node.attrs[k], dtype, k)) for k in ("min", "max")]
    while bounds and not bounds[-1]:
        bounds.pop()
    b.node("Clip", [ins[0]] + bounds, outs)


def _hardsigmoid(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("HardSigmoid", ins, outs, alpha=1.0 / 6.0, beta=0.5)


def _hardswish(b: _Builder, node: Node, ins: list, outs: list) -> None:
    if b.opset >= 14:
        b.node("HardSwish", ins, outs)
    else:
        b.node("Mul", [ins[0], b.node("HardSigmoid", ins, alpha=1.0 / 6.0, beta=0.5)[0]], outs)


def _gelu(b: _Builder, node: Node, ins: list, outs: list) -> None:
    approximate = node.attrs["approximate"]
    if b.opset >= 20:
        b.node("Gelu", ins, outs, approximate=approximate)
        return
    dtype = b.meta(node.inputs[0]).dtype
    x = ins[0]
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x])[0], x])[0]
        inner = b.node("Add", [x, b.node("Mul", [cube, b.const(0.044715, dtype)])[0]])[0]
        phi = b.node("Tanh", [b.node("Mul", [inner, b.const(np.sqrt(2.0 / np.pi), dtype)])[0]])[0]
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        phi = b.node("Erf", [b.node("Mul", [x, b.const(1.0 / np.sqrt(2.0), dtype)])[0]])[0]
    half_x = b.node("Mul", [x, b.const(0.5, dtype)])[0]
    b.node("Mul", [half_x, b.node("Add", [phi, b.const(1.0, dtype)])[0]], outs)


def _not_equal(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Not", b.node("Equal", ins), outs)


def _arg(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        axis, keep = node.attrs["axis"], int(bool(node.attrs["keepdims"]))
        if axis is not None:
            b.node(op_type, ins, outs, axis=int(axis), keepdims=keep, select_last_index=0)
            return
        flat = b.node("Reshape", [ins[0], b.ints([-1], "flat")])[0]
        index = b.node(op_type, [flat], axis=0, keepdims=0, select_last_index=0)[0]
        b.node("Reshape", [index, b.ints(b.meta(node.outputs[0]).shape, "shape")], outs)
    return emit


def _layer_norm(b: _Builder, node: Node, ins: list, outs: list) -> None:
    shape = b.meta(node.inputs[0]).shape
    dtype = b.meta(node.inputs[0]).dtype
    norm_shape = tuple(node.attrs["normalized_shape"])
    eps = float(node.attrs["eps"])
    x, weight, bias = ins
    if b.opset >= 17:
        scale = weight or b.const(np.ones(norm_shape), dtype, "ones")
        b.node("LayerNormalization", [x, scale] + ([bias] if bias else []), outs, axis=-len(norm_shape),
               epsilon=eps)
        return
    axes = list(range(len(shape) - len(norm_shape), len(shape)))
    mu = b.reduce("ReduceMean", x, axes)
    centred = b.node("Sub", [x, mu])[0]
    var = b.reduce("ReduceMean", b.node("Mul", [centred, centred])[0], axes)
    y = b.node("Div", [centred, b.node("Sqrt", [b.node("Add", [var, b.const(eps, dtype, "eps")])[0]])[0]])[0]
    if weight:
        y = b.node("Mul", [y, weight])[0]
    if bias:
        y = b.node("Add", [y, bias])[0]
    b.node("Identity", [y], outs)


def _local_response_norm(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """ONNX LRN for an odd size; for an even one (ONNX's window is the mirror image of PyTorch's there,
    and ONNX Runtime refuses it) the sum of squares as an average pool over the channel axis."""
    a = node.attrs
    size = int(a["size"])
    if size % 2:
        b.node("LRN", ins, outs, size=size, alpha=float(a["alpha"]), beta=float(a["beta"]), bias=float(a["k"]))
        return
    shape = b.meta(node.inputs[0]).shape
    dtype = b.meta(node.inputs[0]).dtype
    x = ins[0]
    rows = b.node("Reshape", [b.node("Mul", [x, x])[0], b.ints([shape[0], 1, shape[1], -1], "lrn_view")])[0]
    mean = b.node("AveragePool", [rows], kernel_shape=[size, 1], strides=[1, 1],
                  pads=[size // 2, 0, (size - 1) // 2, 0], count_include_pad=1)[0]
    mean = b.node("Reshape", [mean, b.ints(list(shape), "shape")])[0]
    d = b.node("Add", [b.node("Mul", [mean, b.const(a["alpha"], dtype, "alpha")])[0], b.const(a["k"], dtype, "k")])[0]
    b.node("Mul", [x, b.node("Pow", [d, b.const(-float(a["beta"]), dtype, "beta")])[0]], outs)


def _split(b: _Builder, node: Node, ins: list, outs: list) -> None:
    a = node.attrs
    b.node("Split", [ins[0], b.ints(a["sections"], "split")], outs, axis=int(a["axis"]))


def _axes_op(op_type: str) -> Emitter:
    def emit(b: _Builder, node: Node, ins: list, outs: list) -> None:
        axes = [int(x) for x in node.attrs["axis"]]
        if not axes:
            b.node("Identity", ins, outs)
        else:
            b.node(op_type, [ins[0], b.ints(axes, "axes")], outs)
    return emit


def _dropout(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """A dropout with a fixed seed is a product with its (constant) scaled mask, exactly; one whose
    seed is drawn per run has no ONNX form that reproduces opdispatch's masks (see `to_model`)."""
    from ..reference.nn import dropout_keep, dropout_scale
    a = node.attrs
    meta = b.meta(node.inputs[0])
    mask = np.where(dropout_keep(int(a["seed"]), float(a["p"]), meta.shape), dropout_scale(float(a["p"])), 0.0)
    b.node("Mul", [ins[0], b.const(mask, meta.dtype, "dropout_mask")], outs)


def _cast(b: _Builder, node: Node, ins: list, outs: list) -> None:
    to = b.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(node.attrs["dtype"]))
    b.node("Cast", ins, outs, to=int(to))


def _gather(b: _Builder, node: Node, ins: list, outs: list) -> None:
    b.node("Gather", ins, outs, axis=int(node.attrs["axis"]))


def _scatter_add(b: _Builder, node: Node, ins: list, outs: list) -> None:
    """The adjoint of Gather: updates viewed as (before, k, after) with the k indices flattened, added
    into zeros of (before, size, after) by ScatterElements (reduction add: opset 16 and later)."""
    if b.opset < 16:
        raise OnnxExportError(f"od.onnx.export: scatter_add needs ScatterElements with reduction='add', opset 16 "
                              f"or later (got opset {b.opset}), at {node.where()}")
    axis, size = int(node.attrs["axis"]), int(node.attrs["size"])
    upd = b.meta(node.inputs[0])
    index_shape = b.meta(node.inputs[1]).shape
    k = math.prod(index_shape)
    before, after = math.prod(upd.shape[:axis]), math.prod(upd.shape[axis + len(index_shape):])
    updates = b.node("Reshape", [ins[0], b.ints([before, k, after], "shape")])[0]
    flat = b.node("Reshape", [ins[1], b.ints([1, k, 1], "shape")])[0]
    index = b.node("Cast", [flat], to=int(b.onnx.TensorProto.INT64))[0]
    index = b.node("Expand", [index, b.ints([before, k, after], "shape")])[0]
    zeros = b.const(np.zeros((before, size, after)), upd.dtype, "zeros")
    summed = b.node("ScatterElements", [zeros, index, updates], axis=1, reduction="add")[0]
    b.node("Reshape", [summed, b.ints(b.meta(node.outputs[0]).shape, "shape")], outs)


EXPORTERS: dict[str, Emitter] = {
    "relu": _same("Relu"), "sigmoid": _same("Sigmoid"), "tanh": _same("Tanh"), "exp": _same("Exp"),
    "log": _same("Log"), "sqrt": _same("Sqrt"), "neg": _same("Neg"),
    "add": _same("Add"), "sub": _same("Sub"), "mul": _same("Mul"), "div": _same("Div"),
    "matmul": _same("MatMul"), "leaky_relu": _leaky_relu, "silu": _silu, "relu_backward": _relu_backward,
    "conv2d": _conv, "conv2d_bias_relu": lambda b, n, i, o: _conv(b, n, i, o, relu=True),
    "conv2d_bias_clip": lambda b, n, i, o: _conv(b, n, i, o, clip=True),
    "conv2d_backward_input": _conv_backward_input,
    "conv_transpose2d": _conv_transpose, "adaptive_avg_pool2d": _adaptive_avg_pool,
    "max_pool2d": _pool("MaxPool"), "avg_pool2d": _pool("AveragePool"), "batch_norm": _batch_norm,
    "sum": _reduce("ReduceSum"), "mean": _reduce("ReduceMean"), "max": _reduce("ReduceMax"),
    "reshape": _reshape_to_output, "flatten": _reshape_to_output, "transpose": _transpose,
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"),
    "softmax_cross_entropy": _softmax_cross_entropy, "broadcast_to": _broadcast_to, "slice": _slice,
    "concat": _concat, "pad": _pad,
    "clip": _clip, "hardsigmoid": _hardsigmoid, "hardswish": _hardswish, "erf": _same("Erf"), "gelu": _gelu,
    "abs": _same("Abs"), "pow": _same("Pow"), "maximum": _same("Max"), "minimum": _same("Min"),
    "equal": _same("Equal"), "not_equal": _not_equal, "less": _same("Less"), "less_equal": _same("LessOrEqual"),
    "greater": _same("Greater"), "greater_equal": _same("GreaterOrEqual"), "where": _same("Where"),
    "min": _reduce("ReduceMin"), "argmax": _arg("ArgMax"), "argmin": _arg("ArgMin"),
    "layer_norm": _layer_norm, "local_response_norm": _local_response_norm, "cast": _cast,
    "gather": _gather, "scatter_add": _scatter_add, "split": _split, "squeeze": _axes_op("Squeeze"),
    "unsqueeze": _axes_op("Unsqueeze"), "dropout": _dropout,
}
"""Op name -> the function that writes it as ONNX nodes (opset 13 and later)."""


def _graph_of(fn_or_graph: Any, example_args: Sequence[Any]) -> GraphIR:
    if isinstance(fn_or_graph, GraphIR):
        return fn_or_graph
    if not callable(fn_or_graph):
        raise OnnxExportError(f"od.onnx.export: argument 'fn_or_graph' got {type(fn_or_graph).__name__}; allowed: "
                              f"a function of od ops, an od.function, an od.onnx model or an od.Graph")
    args = tuple(example_args) if isinstance(example_args, (list, tuple)) else (example_args,)
    return optimize(trace(fn_or_graph, *args), pass_options({"fuse": False}))


def _value_info(onnx: Any, name: str, info: Any) -> Any:
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(info.dtype))
    return onnx.helper.make_tensor_value_info(name, elem, list(info.shape))


def to_model(fn_or_graph: Any, example_args: Sequence[Any] = (), *, opset: int = DEFAULT_OPSET,
             input_names: Optional[Sequence[str]] = None, output_names: Optional[Sequence[str]] = None) -> Any:
    """The ``onnx.ModelProto`` of ``fn_or_graph`` traced on ``example_args`` (see `export`)."""
    onnx = _onnx()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxExportError(f"od.onnx.export: argument 'opset' got {opset!r}; allowed: an int from {MIN_OPSET} "
                              f"to {MAX_OPSET}")
    graph = _graph_of(fn_or_graph, example_args)
    missing: dict[str, list[str]] = {}
    for node in graph.nodes:
        if node.op not in EXPORTERS:
            missing.setdefault(node.op, []).append(node.where())
        elif node.op == "dropout" and not isinstance(node.attrs["seed"], int):
            missing.setdefault("dropout with a seed drawn per run (training mode; give seed=, or export in "
                               "eval mode)", []).append(node.where())
    if missing:
        listing = "; ".join(f"{op} (at {', '.join(sorted(set(w)))})" for op, w in sorted(missing.items()))
        raise OnnxExportError(f"od.onnx.export: no ONNX form for op(s) {listing}; allowed: the ops of "
                              f"{', '.join(sorted(EXPORTERS))} (gradient ops: export the forward function)")
    b = _Builder(onnx, graph, opset)
    in_names = _names(input_names, graph.inputs, "input")
    out_names = _names(output_names, graph.outputs, "output")
    for vid, array in graph.constants.items():
        b.initializers.append(onnx.numpy_helper.from_array(np.asarray(array), b.name(vid)))
    for vid, name in zip(graph.inputs, in_names):
        b.node("Identity", [name], [b.name(vid)])
    for node in graph.nodes:
        EXPORTERS[node.op](b, node, [b.name(v) for v in node.inputs], [b.name(v) for v in node.outputs])
    for vid, name in zip(graph.outputs, out_names):
        b.node("Identity", [b.name(vid)], [name])
    onnx_graph = onnx.helper.make_graph(
        b.nodes, graph.name or "opdispatch",
        [_value_info(onnx, n, graph.values[v]) for v, n in zip(graph.inputs, in_names)],
        [_value_info(onnx, n, graph.values[v]) for v, n in zip(graph.outputs, out_names)],
        initializer=b.initializers)
    model = onnx.helper.make_model(onnx_graph, producer_name="opdispatch",
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types; a bug of ours, reported as such
        raise OnnxExportError(f"od.onnx.export: the model written does not pass onnx.checker: {exc}") from exc
    return model


def _names(given: Optional[Sequence[str]], vids: Sequence[int], prefix: str) -> list[str]:
    if given is None:
        return [f"{prefix}_{i}" for i in range(len(vids))]
    names = list(given)
    if len(names) != len(vids) or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise OnnxExportError(f"od.onnx.export: argument '{prefix}_names' got {given!r}; allowed: {len(vids)} "
                              f"distinct non-empty names")
    return names


def export(fn_or_graph: Any, example_args: Union[Sequence[Any], Any] = (),
           path: Optional[Union[str, os.PathLike]] = None, *, opset: int = DEFAULT_OPSET,
           input_names: Optional[Sequence[str]] = None, output_names: Optional[Sequence[str]] = None) -> Any:
    """Write ``fn_or_graph`` as an ONNX model at ``path`` (when given) and return the ``onnx.ModelProto``.

    ``fn_or_graph`` is a function of od ops (or an ``od.function``, an ``od.onnx`` model) traced on
    ``example_args`` (a tuple of tensors or arrays; one tensor alone is allowed), or an `od.Graph`.
    Inputs are named ``input_0``..., outputs ``output_0``... unless ``input_names`` / ``output_names``
    say otherwise. The file is written atomically, after ``onnx.checker`` accepted the model.
    """
    model = to_model(fn_or_graph, example_args, opset=opset, input_names=input_names, output_names=output_names)
    if path is not None:
        data = model.SerializeToString()
        atomic_write(os.fspath(path), lambda fh: fh.write(data))
    return model


__all__ = ["export", "to_model", "OnnxExportError", "EXPORTERS", "DEFAULT_OPSET"]
