"""Fusion, only where the node's device can run the result:

- ``conv2d(x, w) + b`` with a per-channel ``b`` becomes ``conv2d(x, w, bias=b)``;
- ``batch_norm(conv2d(x, w, b))`` in inference folds the normalisation into the conv's weights and
  bias, written with ops the device has (constant folding then precomputes them when the
  parameters are constants);
- ``relu(conv2d(x, w, b))`` becomes the fused op ``conv2d_bias_relu``, and ``clip(conv2d(x, w, b))``
  (ReLU6) ``conv2d_bias_clip``, where the device has a kernel for it (a device without one gains
  nothing from the fused node).

Fused nodes keep the user lines of every node they came from.
"""

from __future__ import annotations

from typing import Optional

from ...errors import OpDispatchError
from ...registry import registry
from ...schema import TensorMeta
from ..ir import GraphIR, Node
from ...dispatch import has_kernel_for
from ..kernels import has_kernel
from .relu_output import read_relu_outputs
from .pool_grad import mask_before_max_pool_backward
from .rewrite import Rewriter, single_reader, splice

BN_FOLD_OPS = ("add", "sqrt", "div", "reshape", "mul", "sub", "neg", "conv2d")


def fuse(graph: GraphIR) -> GraphIR:
    """Apply every fusion rule in turn (after pointing relu gradients at relu outputs, which frees
    the pre-activations of training graphs for fusion, and moving relu gradients before max-pool
    gradients, where they act on a tensor the window size smaller)."""
    graph = mask_before_max_pool_backward(read_relu_outputs(graph))
    return fuse_conv_clip(fuse_conv_relu(fold_batch_norm(fold_bias_add(graph))))


def _can_run(graph: GraphIR, node: Node, op: str, inputs, attrs: dict) -> bool:
    try:
        rt = registry().runtime(node.device)
    except OpDispatchError:
        return False
    metas = [None if v is None else _meta(graph, v) for v in inputs]
    dtype = graph.values[node.outputs[0]].dtype
    return has_kernel(rt, op, metas, attrs, dtype)


def _meta(graph: GraphIR, v: int) -> TensorMeta:
    info = graph.values[v]
    return TensorMeta(info.shape, info.dtype)


def _has_kernels(graph: GraphIR, node: Node, ops) -> bool:
    try:
        rt = registry().runtime(node.device)
    except OpDispatchError:
        return False
    dtype = graph.values[node.outputs[0]].dtype
    return all(has_kernel_for(rt.table, op, dtype) for op in ops)


def _producer_conv(graph: GraphIR, producers: dict, consumers: dict, v: Optional[int], node: Node,
                   op: str = "conv2d") -> Optional[Node]:
    if v is None or v not in producers:
        return None
    conv = graph.nodes[producers[v]]
    if conv.op != op or conv.device != node.device or not single_reader(graph, consumers, v):
        return None
    return conv


def fold_bias_add(graph: GraphIR) -> GraphIR:
    """``add(conv2d(x, w), b)`` with b of shape (C,1,1) or (1,C,1,1) -> ``conv2d(x, w, reshape(b, (C,)))``."""
    producers, consumers = graph.producers(), graph.consumers()
    rw = Rewriter(graph)
    drop: set[int] = set()
    replace_at: dict[int, list[Node]] = {}
    for i, node in enumerate(graph.nodes):
        if node.op != "add":
            continue
        for conv_in, bias_in in ((node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])):
            conv = _producer_conv(graph, producers, consumers, conv_in, node)
            if conv is None or conv_in is None or bias_in is None or conv.inputs[2] is not None \
                    or producers[conv_in] in drop:
                continue
            c = graph.values[conv_in].shape[1]
            b = graph.values[bias_in]
            if b.shape not in ((c, 1, 1), (1, c, 1, 1)) or b.dtype != graph.values[conv_in].dtype or \
                    graph.values[node.outputs[0]].shape != graph.values[conv_in].shape:
                continue
            if not _has_kernels(graph, node, ("reshape", "conv2d")):
                continue
            sources = conv.sources + node.sources
            flat = rw.node("reshape", [bias_in], {"shape": (c,)}, node.device, node.sources)
            new = rw.node("conv2d", [conv.inputs[0], conv.inputs[1], flat.outputs[0]], dict(conv.attrs), node.device,
                          sources, conv.fused_from or ("conv2d", "add"), outputs=node.outputs)
            drop.add(producers[conv_in])
            replace_at[i] = [flat, new]
            break
    if not replace_at:
        return graph
    return rw.build(splice(graph, drop, replace_at))


def fold_batch_norm(graph: GraphIR) -> GraphIR:
    """Inference ``batch_norm(conv2d(x, w, b), mean, var, gamma, beta)`` -> ``conv2d(x, w * s, (b - mean) * s + beta)``
    with ``s = gamma / sqrt(var + eps)``, all written with ops."""
    producers, consumers = graph.producers(), graph.consumers()
    rw = Rewriter(graph)
    drop: set[int] = set()
    replace_at: dict[int, list[Node]] = {}
    for i, bn in enumerate(graph.nodes):
        if bn.op != "batch_norm" or bn.attrs["training"]:
            continue
        y, mean, var, gamma, beta = bn.inputs
        conv = _producer_conv(graph, producers, consumers, y, bn)
        if conv is None or y is None or producers[y] in drop or not _has_kernels(graph, bn, BN_FOLD_OPS):
            continue
        x, w, b = conv.inputs
        if w is None:  # never: w is a required input of conv2d (this narrows its type)
            continue
        dev, src = bn.device, conv.sources + bn.sources
        dtype = graph.values[y].dtype
        c = graph.values[y].shape[1]
        new: list[Node] = []

        def op(name: str, *args, **attrs) -> int:  # called only within this iteration, so the late binding is right
            new.append(rw.node(name, list(args), attrs, dev, bn.sources))  # noqa: B023
            return new[-1].outputs[0]  # noqa: B023

        std = op("sqrt", op("add", var, rw.constant(bn.attrs["eps"], dtype)))
        scale = op("div", gamma if gamma is not None else rw.constant(1.0, dtype), std)
        w2 = op("mul", w, op("reshape", scale, shape=(c,) + (1,) * (len(graph.values[w].shape) - 1)))
        shifted = op("sub", b, mean) if b is not None else op("neg", mean)
        b2 = op("mul", shifted, scale)
        if beta is not None:
            b2 = op("add", b2, beta)
        new.append(rw.node("conv2d", [x, w2, b2], dict(conv.attrs), dev, src, ("conv2d", "batch_norm"),
                           outputs=bn.outputs))
        drop.add(producers[y])
        replace_at[i] = new
    if not replace_at:
        return graph
    return rw.build(splice(graph, drop, replace_at))


def fuse_conv_relu(graph: GraphIR) -> GraphIR:
    """``relu(conv2d(x, w, b))`` -> ``conv2d_bias_relu(x, w, b)`` where the device can run it."""
    return _fuse_activation(graph, "relu", "conv2d_bias_relu", lambda node: {})


def fuse_conv_clip(graph: GraphIR) -> GraphIR:
    """``clip(conv2d(x, w, b), min, max)`` (ReLU6) -> ``conv2d_bias_clip(x, w, b, min=, max=)`` where the
    device can run it (a kernel of its own, not the decomposition)."""
    return _fuse_activation(graph, "clip", "conv2d_bias_clip",
                            lambda node: {"min": node.attrs["min"], "max": node.attrs["max"]})


def _fuse_activation(graph: GraphIR, act: str, fused_op: str, act_attrs) -> GraphIR:
    """``act(conv2d(...))`` -> ``fused_op(...)`` with the conv's attributes and ``act_attrs(act node)``,
    where the conv's result has no other reader and the device has a kernel for the fused op."""
    producers, consumers = graph.producers(), graph.consumers()
    rw = Rewriter(graph)
    drop: set[int] = set()
    replace_at: dict[int, list[Node]] = {}
    for i, node in enumerate(graph.nodes):
        if node.op != act:
            continue
        x = node.inputs[0]
        conv = _producer_conv(graph, producers, consumers, x, node)
        attrs = dict(conv.attrs, **act_attrs(node)) if conv is not None else {}
        if conv is None or x is None or not _can_run(graph, conv, fused_op, conv.inputs, attrs):
            continue
        parts = conv.fused_from or ("conv2d",)
        fused = rw.node(fused_op, list(conv.inputs), attrs, node.device,
                        conv.sources + node.sources, parts + (act,), outputs=node.outputs)
        drop.add(producers[x])
        replace_at[i] = [fused]
    if not replace_at:
        return graph
    return rw.build(splice(graph, drop, replace_at))

