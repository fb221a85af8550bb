"""Constant folding: nodes whose inputs are all constants are computed once, at pass time.

Each node is evaluated with its own device's kernel (the same arithmetic as eager, NumPy's
floating-point errors off, its results checked against the node's shapes and dtypes). Nodes are
left alone when their device is unavailable, when the kernel raises or returns what its schema did
not promise (the error then surfaces at run time, at the user's line), when a result holds NaN or
inf (so that ``od.check_numerics`` still names the node that makes it, at run time), when the
result would be much larger than its inputs (a broadcast of a scalar is cheaper to compute than
to store) or when the node draws a fresh seed per run (dropout with seed=None).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ... import random
from ...dispatch import check_results
from ...fpstate import quiet, restore
from ...registry import registry
from ...schema import TensorMeta
from ..ir import GraphIR, readonly
from ..kernels import node_choice, node_function

MAX_GROWTH_BYTES = 1 << 16  # fold when the result is at most this or at most its inputs' size


def fold_constants(graph: GraphIR, max_growth_bytes: int = MAX_GROWTH_BYTES) -> GraphIR:
    """``graph`` with every foldable node replaced by constants."""
    constants = dict(graph.constants)
    values = dict(graph.values)
    nodes = []
    for node in graph.nodes:
        if node.op == "copy" or not all(v is None or v in constants for v in node.inputs) \
                or random.seed_count(node.attrs):  # a fresh random draw per run is no constant
            nodes.append(node)
            continue
        in_bytes = sum(constants[v].nbytes for v in node.inputs if v is not None)
        out_bytes = sum(values[o].nbytes for o in node.outputs)
        if out_bytes > max(in_bytes, max_growth_bytes):
            nodes.append(node)
            continue
        token = quiet()
        try:
            rt = registry().runtime(node.device)
            fn = node_function(graph, node)
            datas = [None if v is None else rt.from_numpy(constants[v], rt.device) for v in node.inputs]
            promised = [TensorMeta(values[o].shape, values[o].dtype) for o in node.outputs]
            results = check_results(node.op, rt, node_choice(graph, node, rt).provider, fn(*datas, **node.attrs),
                                    promised)
            hosts = [np.asarray(rt.to_numpy(r, rt.device), dtype=values[o].dtype)
                     for o, r in zip(node.outputs, results)]
        except Exception:  # an OpDispatchError or a kernel's own: left to run time, where it names the user's line
            nodes.append(node)
            continue
        finally:
            restore(token)
        if not all(np.isfinite(h).all() for h in hosts):  # made at run time, where check_numerics sees it
            nodes.append(node)
            continue
        for o, h in zip(node.outputs, hosts):
            constants[o] = readonly(h)
            values[o] = replace(values[o], device=node.device)
    if len(nodes) == len(graph.nodes):
        return graph
    return graph.replace(nodes=tuple(nodes), constants=constants, values=values)
