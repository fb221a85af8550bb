"""Dead-code elimination: drop nodes and constants no graph output depends on."""

from __future__ import annotations

from ... import random
from ..ir import GraphIR


def eliminate_dead_code(graph: GraphIR) -> GraphIR:
    """``graph`` without the nodes whose outputs nothing needs (ops have no side effects). A node that
    draws a seed from ``od.random`` per run (dropout with seed=None) stays: the draws of a run must be
    those eager code makes, whatever is done with its result."""
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs) or random.seed_count(node.attrs):
            kept.append(node)
            live.update(v for v in node.inputs if v is not None)
    kept.reverse()
    if len(kept) == len(graph.nodes) and all(c in live for c in graph.constants):
        return graph
    defined = set(graph.inputs) | {o for n in kept for o in n.outputs}
    constants = {c: a for c, a in graph.constants.items() if c in live}
    values = {v: info for v, info in graph.values.items() if v in defined or v in constants}
    return graph.replace(nodes=tuple(kept), constants=constants, values=values)
