"""The graph IR: immutable `Node`s in topological order over numbered values, and the `GraphIR`.

Values are ints (``%3``). A value is a graph input, a constant (a read-only NumPy array kept in
``GraphIR.constants``) or an output of exactly one node. Every node carries its op name, kernel
attributes, device and the user's source lines that created it (several for fused nodes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..device import Device
from ..source import Source


@dataclass(frozen=True)
class ValueInfo:
    """Shape, dtype and device of a value (device None: a host constant, placed where it is used)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    device: Optional[Device] = None

    @property
    def nbytes(self) -> int:
        """Size of the value's data in bytes."""
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        where = f" @{self.device}" if self.device is not None else ""
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]{where}"


@dataclass(frozen=True, eq=False)
class Node:
    """One op call: ``outputs = op(*inputs, **attrs)`` on ``device``; an input is None where an
    optional input is absent. ``sources`` are the user's lines that created it."""

    op: str
    inputs: tuple[Optional[int], ...]
    outputs: tuple[int, ...]
    attrs: Mapping[str, Any]
    device: Device
    sources: tuple[Source, ...] = ()
    fused_from: tuple[str, ...] = ()
    decomposed_from: str = ""  # the op whose decomposition this node is part of (its device had no kernel)
    grad_of: str = ""  # in a backward pass: the forward op (and its line) whose gradient rule made this node
    layout: str = ""  # the memory layout its kernel writes the result in ("" its default; see passes.layout)

    def where(self) -> str:
        """The user's line(s) that created this node, as ``file:line`` text."""
        return ", ".join(map(str, self.sources)) or "unknown location"

    def describe(self) -> str:
        """``relu (node %4, created at file.py:12)`` -- for error messages."""
        outs = ", ".join(f"%{o}" for o in self.outputs)
        return f"{self.op} (node {outs}, created at {self.where()})"


@dataclass(frozen=True)
class MemoryPlan:
    """When each value dies and which buffer slot it would occupy.

    ``free_after[i]`` lists the values whose last reader is node ``i``; ``buffer_of`` maps a value
    to a slot shared with values whose lifetimes do not overlap; ``peak_bytes`` is the most bytes
    alive at once under this plan, ``total_bytes`` what keeping every value alive would take.
    """

    free_after: tuple[tuple[int, ...], ...]
    buffer_of: Mapping[int, int]
    peak_bytes: int
    total_bytes: int


def freeze(value: Any) -> Any:
    """A hashable form of an attribute value (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, np.generic):
        return value.item()
    return value


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only copy of ``array`` (constants are never mutated)."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class GraphIR:
    """A traced computation: inputs, constants, nodes in topological order, outputs.

    Immutable: passes return new graphs (of the same class). ``str(graph)`` prints every node with
    its attributes, output shapes, dtypes, devices and the user's source lines. The `od.Graph` users
    get (`opdispatch.graph.graph.Graph`) adds running and saving.
    """

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    nodes: tuple[Node, ...]
    values: Mapping[int, ValueInfo]
    constants: Mapping[int, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    memory: Optional[MemoryPlan] = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # run-time plans, by placement

    def replace(self, **changes: Any) -> "GraphIR":
        """A copy with ``changes`` (mappings are frozen; the run-time cache starts empty)."""
        for key in ("values", "constants"):
            if key in changes:
                changes[key] = MappingProxyType(dict(changes[key]))
        changes.setdefault("memory", None)
        return replace(self, _cache={}, **changes)

    def next_id(self) -> int:
        """A value id not used yet."""
        return max(self.values, default=-1) + 1

    def consumers(self) -> dict[int, list[int]]:
        """Value -> indices of the nodes that read it, in order."""
        out: dict[int, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for v in node.inputs:
                if v is not None:
                    out.setdefault(v, []).append(i)
        return out

    def producers(self) -> dict[int, int]:
        """Value -> index of the node that computes it."""
        return {o: i for i, node in enumerate(self.nodes) for o in node.outputs}

    def ops(self) -> list[str]:
        """The op of each node, in order (handy in tests)."""
        return [n.op for n in self.nodes]

    def placement(self) -> str:
        """The device each node runs on and the copies between devices, one line each."""
        lines = []
        for node in self.nodes:
            what = f"copy %{node.inputs[0]} -> {node.device}" if node.op == "copy" else node.op
            if node.decomposed_from:
                what += f" [decomposition of {node.decomposed_from}]"
            lines.append(f"{node.device}  {what}  ({node.where()})")
        return "\n".join(lines)

    def __str__(self) -> str:
        def val(v: Optional[int]) -> str:
            return "None" if v is None else f"%{v}"

        head = ", ".join(f"%{i}: {self.values[i]}" for i in self.inputs)
        lines = [f"graph {self.name}({head}) -> ({', '.join(val(o) for o in self.outputs)})"]
        for c, arr in self.constants.items():
            body = np.array2string(arr, threshold=6, separator=", ").replace("\n", "")
            lines.append(f"  %{c} = const {self.values[c]} {body if arr.size <= 6 else '...'}")
        for i, node in enumerate(self.nodes):
            attrs = " ".join(f"{k}={_short(v)}" for k, v in node.attrs.items())
            outs = ", ".join(f"%{o}: {self.values[o]}" for o in node.outputs)
            fused = f" fused[{'+'.join(node.fused_from)}]" if node.fused_from else ""
            fused += f" decomposed[{node.decomposed_from}]" if node.decomposed_from else ""
            fused += f" layout[{node.layout}]" if node.layout else ""
            line = f"  {outs} = {node.op}({', '.join(val(v) for v in node.inputs)}){fused}"
            line += f" {{{attrs}}}" if attrs else ""
            line += f"  # {', '.join(_short_source(s) for s in node.sources)}"
            if self.memory is not None and self.memory.free_after[i]:
                line += f"  [free {', '.join(val(v) for v in self.memory.free_after[i])}]"
            lines.append(line)
        if self.memory is not None:
            lines.append(f"  # memory plan: peak {self.memory.peak_bytes} bytes alive "
                         f"(vs {self.memory.total_bytes} keeping every value)")
        return "\n".join(lines)

    __repr__ = __str__


def _short(value: Any) -> str:
    return str(freeze(value)).replace(" ", "")


def _short_source(src: Source) -> str:
    try:
        rel = os.path.relpath(src.file)
    except ValueError:
        rel = src.file
    return f"{src.file if rel.startswith('..') else rel}:{src.line}"


def make_node(op: str, inputs: Sequence[Optional[int]], outputs: Sequence[int], attrs: Mapping[str, Any],
              device: Device, sources: Sequence[Source] = (), fused_from: Sequence[str] = (),
              decomposed_from: str = "", grad_of: str = "", layout: str = "") -> Node:
    """Build a `Node` with frozen attributes."""
    return Node(op, tuple(inputs), tuple(outputs), MappingProxyType(dict(attrs)), device,
                tuple(dict.fromkeys(sources)), tuple(fused_from), decomposed_from, grad_of, layout)
