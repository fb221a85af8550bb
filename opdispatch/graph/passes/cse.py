"""Common-subexpression elimination: one node per (op, inputs, attributes, device); equal constants merged."""

from __future__ import annotations

from typing import Any, Optional

from ..ir import GraphIR, freeze


def eliminate_common_subexpressions(graph: GraphIR) -> GraphIR:
    """``graph`` with duplicate computations and duplicate constants computed once."""
    alias: dict[int, int] = {}
    constants: dict[int, Any] = {}
    by_content: dict[tuple, int] = {}
    for c, arr in graph.constants.items():
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in by_content:
            alias[c] = by_content[key]
        else:
            by_content[key] = c
            constants[c] = arr

    def resolve(v: Optional[int]) -> Optional[int]:
        return None if v is None else alias.get(v, v)

    seen: dict[tuple, tuple[int, ...]] = {}
    nodes = []
    changed = bool(alias)
    for node in graph.nodes:
        inputs = tuple(resolve(v) for v in node.inputs)
        node_key = (node.op, inputs, freeze(node.attrs), node.device)
        earlier = seen.get(node_key)
        if earlier is not None:
            alias.update(zip(node.outputs, earlier))
            changed = True
            continue
        seen[node_key] = node.outputs
        if inputs != node.inputs:
            node = _with_inputs(node, inputs)
        nodes.append(node)
    if not changed:
        return graph
    outputs = tuple(resolve(v) for v in graph.outputs)
    values = {v: info for v, info in graph.values.items() if v not in alias}
    return graph.replace(nodes=tuple(nodes), constants=constants, values=values, outputs=outputs)


def _with_inputs(node: Any, inputs: tuple) -> Any:
    from dataclasses import replace

    return replace(node, inputs=inputs)
