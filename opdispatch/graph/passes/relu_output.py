"""``relu_backward(dy, x)`` reads ``relu(x)`` instead of ``x`` where the graph computes both.

``relu(x) > 0`` exactly where ``x > 0``, so the result is identical; the pre-activation ``x`` (a
conv or matmul output) then dies right after the relu instead of living until the backward
pass, and ``conv2d`` + ``relu`` can fuse in training graphs too.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import GraphIR


def read_relu_outputs(graph: GraphIR) -> GraphIR:
    """``graph`` with every ``relu_backward`` reading the matching relu's output when there is one."""
    relu_of: dict[tuple, tuple[int, int]] = {}  # (x, device) -> (relu output, node index)
    nodes = list(graph.nodes)
    changed = False
    for i, node in enumerate(nodes):
        if node.op == "relu":
            relu_of.setdefault((node.inputs[0], node.device), (node.outputs[0], i))
        elif node.op == "relu_backward":
            hit = relu_of.get((node.inputs[1], node.device))
            if hit is not None and hit[1] < i:
                nodes[i] = replace(node, inputs=(node.inputs[0], hit[0]))
                changed = True
    return graph.replace(nodes=tuple(nodes)) if changed else graph
