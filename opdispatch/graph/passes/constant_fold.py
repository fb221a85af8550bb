"""Constant folding: nodes whose inputs are all constants are computed once, at pass time.

Each node is evaluated with its own device's kernel (the same arithmetic as eager). Nodes are
left alone when their device is unavailable, when the kernel raises (the error then surfaces at
run time, at the user's line) or when the result would be much larger than its inputs (a
broadcast of a scalar is cheaper to compute than to store).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...registry import registry
from ..ir import GraphIR, readonly
from ..kernels import node_function

MAX_GROWTH_BYTES = 1 << 16  # fold when the result is at most this or at most its inputs' size


def fold_constants(graph: GraphIR, max_growth_bytes: int = MAX_GROWTH_BYTES) -> GraphIR:
    """``graph`` with every foldable node replaced by constants."""
    constants = dict(graph.constants)
    values = dict(graph.values)
    nodes = []
    for node in graph.nodes:
        if node.op == "copy" or not all(v is None or v in constants for v in node.inputs):
            nodes.append(node)
            continue
        in_bytes = sum(constants[v].nbytes for v in node.inputs if v is not None)
        out_bytes = sum(values[o].nbytes for o in node.outputs)
        if out_bytes > max(in_bytes, max_growth_bytes):
            nodes.append(node)
            continue
        try:
            rt = registry().runtime(node.device)
            fn = node_function(graph, node)
            datas = [None if v is None else rt.from_numpy(constants[v], rt.device) for v in node.inputs]
            result = fn(*datas, **node.attrs)
        except Exception:  # an OpDispatchError or a kernel's own: left to run time, where it names the user's line
            nodes.append(node)
            continue
        results = result if isinstance(result, tuple) else (result,)
        for o, r in zip(node.outputs, results):
            constants[o] = readonly(np.asarray(rt.to_numpy(r, rt.device), dtype=values[o].dtype))
            values[o] = replace(values[o], device=node.device)
    if len(nodes) == len(graph.nodes):
        return graph
    return graph.replace(nodes=tuple(nodes), constants=constants, values=values)
