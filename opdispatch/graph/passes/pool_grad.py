"""``relu_backward(max_pool2d_backward(y, dy), y)`` -> ``max_pool2d_backward(y, relu_backward(dy, max_pool2d(y)))``.

The backward of the classic conv -> relu -> max pool block masks the pooled gradient by the relu
after routing it. Each window routes its gradient to its first maximum ``p``, and ``y[p]`` *is*
the window's pooled value, so masking by ``pooled > 0`` before routing gives the very same result
(bit for bit, NaN included) on a tensor the window size smaller. Applied where the graph already
computes ``max_pool2d(y)`` with the same attributes (a training graph does) and nothing else
reads the routed gradient.
"""

from __future__ import annotations

from ..ir import GraphIR, Node
from .rewrite import Rewriter, single_reader, splice


def _key(node: Node) -> tuple:
    return tuple(sorted(node.attrs.items()))


def mask_before_max_pool_backward(graph: GraphIR) -> GraphIR:
    """``graph`` with each matching relu gradient moved before its max-pool gradient."""
    producers, consumers = graph.producers(), graph.consumers()
    pooled: dict[tuple, tuple[int, int]] = {}  # (input, attrs, device) -> (pooled value, node index)
    for i, node in enumerate(graph.nodes):
        if node.op == "max_pool2d":
            pooled.setdefault((node.inputs[0], _key(node), node.device), (node.outputs[0], i))
    rw = Rewriter(graph)
    drop: set[int] = set()
    replace_at: dict[int, list[Node]] = {}
    for i, node in enumerate(graph.nodes):
        if node.op != "relu_backward" or node.inputs[0] not in producers:
            continue
        b = producers[node.inputs[0]]
        back = graph.nodes[b]
        y = node.inputs[1]
        if back.op != "max_pool2d_backward" or back.inputs[0] != y or back.device != node.device \
                or not single_reader(graph, consumers, node.inputs[0]) or b in replace_at:
            continue
        hit = pooled.get((y, _key(back), back.device))
        if hit is None or hit[1] > b:
            continue
        masked = rw.node("relu_backward", [back.inputs[1], hit[0]], {}, node.device, node.sources, ("relu_backward",))
        routed = rw.node("max_pool2d_backward", [y, masked.outputs[0]], dict(back.attrs), node.device,
                         back.sources + node.sources, ("max_pool2d_backward", "relu_backward"), outputs=node.outputs)
        replace_at[b] = [masked, routed]
        drop.add(i)
    if not replace_at:
        return graph
    return rw.build(splice(graph, drop, replace_at))
