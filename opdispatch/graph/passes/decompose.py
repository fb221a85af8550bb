"""Decomposition at lowering: a node whose device has no kernel for it, but can run its op's
decomposition, becomes the decomposition's ops, traced on that device (they keep the node's source
lines and say which op they came from). Tracing a function already decomposes such calls as it
meets them; this pass covers graphs traced or loaded where the kernels were different (a provider
since disabled, a graph saved on another machine)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Sequence

from ... import recording
from ...errors import OpDispatchError
from ...ops import OPS
from ...dispatch import choose
from ...registry import registry
from ...schema import TensorMeta
from ...tensor import F
from ..ir import GraphIR, Node, make_node
from ..kernels import node_choice
from ..trace import Tracer
from .rewrite import Rewriter


def decompose(graph: GraphIR) -> GraphIR:
    """``graph`` with every node its device runs as a decomposition expanded into the decomposition's ops."""
    rw = Rewriter(graph)
    nodes: list[Node] = []
    changed = False
    for node in graph.nodes:
        if node.op == "copy":
            nodes.append(node)
            continue
        try:
            rt = registry().runtime(node.device)
            expand = node_choice(graph, node, rt).decompose
        except OpDispatchError:
            expand = False
        if not expand:
            nodes.append(node)
            continue
        nodes.extend(_expanded(rw, graph, node, rt))
        changed = True
    return rw.build(nodes) if changed else graph


def trace_decomposition(op: str, rt: Any, metas: Sequence[Optional[TensorMeta]], kattrs: dict) -> GraphIR:
    """The graph of ``op``'s decomposition on the device of runtime ``rt``, for inputs of ``metas``
    (absent optional inputs None) and kernel attributes ``kattrs``; its inputs are the present inputs."""
    tracer = Tracer(f"decomposition of {op}")
    inputs = [None if m is None else tracer.symbolic_input(m.shape, m.dtype, rt) for m in metas]
    token = recording.push(tracer)
    try:
        with recording.decomposing(op):
            result = OPS[op].decomposition.fn(F, *inputs, **kattrs)  # type: ignore[union-attr]
    finally:
        recording.pop(token)
    outs = result if isinstance(result, tuple) else (result,)
    return tracer.graph([tracer.value_of(t) for t in outs])


def decomposition_parts(op: str, rt: Any, metas: Sequence[Optional[TensorMeta]], kattrs: dict) -> list[tuple[str, Any]]:
    """Each op call ``op``'s decomposition makes on runtime ``rt`` for these inputs, with the `Choice`
    dispatch makes for it there (nested decompositions already expanded)."""
    sub = trace_decomposition(op, rt, metas, kattrs)
    parts = []
    for n in sub.nodes:
        ins = [None if v is None else TensorMeta(sub.values[v].shape, sub.values[v].dtype) for v in n.inputs]
        parts.append((n.op, choose(rt, OPS[n.op], ins, dict(n.attrs), sub.values[n.outputs[0]].dtype)))
    return parts


def decomposition_problem(op: str, rt: Any, metas: Sequence[Optional[TensorMeta]], kattrs: dict) -> Optional[str]:
    """None when every op call of ``op``'s decomposition has a kernel on ``rt`` (their ``supports()``
    asked for these very calls), else the first one that does not, and why."""
    for part, choice in decomposition_parts(op, rt, metas, kattrs):
        if choice.fn is None:
            return f"its decomposition calls {part}, which cannot run there: {choice.reason}"
    return None


def _expanded(rw: Rewriter, graph: GraphIR, node: Node, rt: Any) -> list[Node]:
    metas = [None if v is None else TensorMeta(graph.values[v].shape, graph.values[v].dtype) for v in node.inputs]
    sub = trace_decomposition(node.op, rt, metas, dict(node.attrs))
    ids = dict(zip(sub.inputs, [v for v in node.inputs if v is not None]))
    for c, arr in sub.constants.items():
        ids[c] = rw.constant(arr, arr.dtype)
    for sv, v in zip(sub.outputs, node.outputs):
        if sv not in ids:
            ids[sv] = v
    new: list[Node] = []
    for sn in sub.nodes:
        outputs = [ids[o] if o in ids else ids.setdefault(o, rw.new_value(replace(sub.values[o], device=node.device)))
                   for o in sn.outputs]
        new.append(make_node(sn.op, [None if v is None else ids[v] for v in sn.inputs], outputs, sn.attrs,
                             node.device, node.sources, decomposed_from=node.decomposed_from or node.op))
    for sv, v in zip(sub.outputs, node.outputs):  # an output the decomposition passed through unchanged
        if ids[sv] != v:
            info = graph.values[v]
            new.append(make_node("reshape", [ids[sv]], [v], {"shape": info.shape}, node.device, node.sources,
                                 decomposed_from=node.decomposed_from or node.op))
    return new
