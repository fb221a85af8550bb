"""Helpers for passes that build new nodes: value ids, constants and schema-inferred nodes."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ...device import Device
from ...schema import TensorMeta
from ...ops import OPS
from ..ir import GraphIR, Node, ValueInfo, make_node, readonly
from ...source import Source


class Rewriter:
    """Collects new values, constants and nodes for a rewritten copy of ``graph``."""

    def __init__(self, graph: GraphIR) -> None:
        self.graph = graph
        self.values: dict[int, ValueInfo] = dict(graph.values)
        self.constants: dict[int, np.ndarray] = dict(graph.constants)
        self._next = graph.next_id()

    def meta(self, v: Optional[int]) -> Optional[TensorMeta]:
        """The shape and dtype of value ``v``."""
        if v is None:
            return None
        info = self.values[v]
        return TensorMeta(info.shape, info.dtype)

    def constant(self, array: Any, dtype: np.dtype) -> int:
        """A new constant value."""
        arr = readonly(np.asarray(array, dtype=dtype))
        vid = self._new(ValueInfo(arr.shape, arr.dtype, None))
        self.constants[vid] = arr
        return vid

    def node(self, op: str, inputs: Sequence[Optional[int]], attrs: dict, device: Device,
             sources: Sequence[Source], fused_from: Sequence[str] = (),
             outputs: Optional[Sequence[int]] = None) -> Node:
        """A node for ``op`` with user ``attrs``, its outputs inferred by the op's schema (new values
        unless ``outputs`` are given)."""
        schema = OPS[op]
        nattrs = schema.normalize(attrs) if schema.attrs else dict(attrs)
        outs, kattrs = schema.infer(op, [self.meta(v) for v in inputs], nattrs)
        if outputs is None:
            outputs = [self._new(ValueInfo(m.shape, m.dtype, device)) for m in outs]
        return make_node(op, inputs, outputs, kattrs, device, sources, fused_from)

    def new_value(self, info: ValueInfo) -> int:
        """A new value described by ``info``."""
        return self._new(info)

    def _new(self, info: ValueInfo) -> int:
        vid = self._next
        self._next += 1
        self.values[vid] = info
        return vid

    def build(self, nodes: Sequence[Node]) -> GraphIR:
        """The rewritten graph with ``nodes``."""
        return self.graph.replace(nodes=tuple(nodes), values=self.values, constants=self.constants)


def single_reader(graph: GraphIR, consumers: dict[int, list[int]], v: int) -> bool:
    """True when value ``v`` is read by exactly one node and is not a graph output."""
    return len(consumers.get(v, ())) == 1 and v not in graph.outputs


def splice(graph: GraphIR, drop: set[int], replace_at: dict[int, list[Node]]) -> list[Node]:
    """``graph``'s nodes without the indices in ``drop``, the node at each index of ``replace_at``
    replaced by that list of nodes."""
    nodes: list[Node] = []
    for i, node in enumerate(graph.nodes):
        if i in replace_at:
            nodes.extend(replace_at[i])
        elif i not in drop:
            nodes.append(node)
    return nodes
