"""Keep a kernel's preferred memory layout between the nodes that read it, converting only where needed.

oneDNN's convolutions run fastest on channels-last data (N, H, W, C in memory) and the oneDNN provider
reorders a plain (N, C, H, W) input into it and its result back, on every call. A kernel that can write
its result channels-last declares ``layouts=("channels_last",)`` (`opdispatch.backend.Kernel`); this
pass asks it to (``Node.layout``) where the result reaches another such kernel as its first input,
directly or through element-wise nodes of the same shape (NumPy's element-wise kernels keep the
memory order of their input), so consecutive oneDNN nodes exchange channels-last arrays and the
reorders happen only at the region's edges. A result that is, or flows element-wise into, a graph
output keeps the kernel's default layout: graphs return what they would without the pass.

Every reader still sees the same values (a channels-last array is a strided view of the same shape),
so a node outside the region reads it correctly, only without the speed-up. The pass is on by
default; ``od.function(fn, passes={"layout": False})`` turns it off (for A/B measurements).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ...backend import CHANNELS_LAST
from ...errors import OpDispatchError
from ...ops import OPS
from ..ir import GraphIR, Node
from ..kernels import node_choice

PRESERVING_FAMILIES = ("elementwise",)
"""Op families whose kernels keep their input's memory layout when the result has the input's shape."""


def _layouts(graph: GraphIR, node: Node) -> frozenset:
    """The result layouts the kernel chosen for ``node`` can write (none for copies and decompositions)."""
    if node.op == "copy" or node.op not in OPS:
        return frozenset()
    try:
        return node_choice(graph, node).layouts
    except OpDispatchError:  # a device that has gone: the executor reports it
        return frozenset()


def _preserves(graph: GraphIR, node: Node, value: int) -> bool:
    """Whether ``node`` writes ``value``'s layout through to its result (an element-wise op of its shape)."""
    schema = OPS.get(node.op)
    return (schema is not None and schema.family in PRESERVING_FAMILIES and len(node.outputs) == 1
            and graph.values[node.outputs[0]].shape == graph.values[value].shape)


def choose_layouts(graph: GraphIR, everywhere: bool = False) -> GraphIR:
    """``graph`` with ``layout="channels_last"`` on every node whose kernel can write it, whose 4-D
    result reaches such a node's first input (through same-shape element-wise nodes on its device) and
    does not reach a graph output that way; with ``everywhere``, on every node whose kernel can write
    it (for checking kernels: ``passes={"layout": "all"}``)."""
    wants = [CHANNELS_LAST in _layouts(graph, n) and len(n.outputs) == 1
             and len(graph.values[n.outputs[0]].shape) == 4 for n in graph.nodes]
    if not any(wants):
        return graph
    consumers = graph.consumers()
    outputs = set(graph.outputs)

    def region(start: int, device) -> tuple[bool, bool]:
        """(reaches a channels-last reader, reaches a graph output) from value ``start``."""
        reader, output = False, False
        todo, seen = [start], {start}
        while todo:
            v = todo.pop()
            output = output or v in outputs
            for i in consumers.get(v, ()):
                node = graph.nodes[i]
                if node.device != device:
                    continue
                if wants[i] and node.inputs and node.inputs[0] == v:
                    reader = True
                elif _preserves(graph, node, v) and node.outputs[0] not in seen:
                    seen.add(node.outputs[0])
                    todo.append(node.outputs[0])
        return reader, output

    nodes = list(graph.nodes)
    changed = False
    for i, node in enumerate(nodes):
        layout: Optional[str] = None
        if wants[i] and everywhere:
            layout = CHANNELS_LAST
        elif wants[i]:
            reader, output = region(node.outputs[0], node.device)
            layout = CHANNELS_LAST if reader and not output else None
        if (layout or "") != node.layout:
            nodes[i] = replace(node, layout=layout or "")
            changed = True
    return graph.replace(nodes=tuple(nodes)) if changed else graph
