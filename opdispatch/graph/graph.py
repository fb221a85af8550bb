"""`Graph`, the graph users hold (``step.graph(x)``, ``od.load_graph``): the IR plus running it on
tensors and saving it. It sits above the executor and the file format, so the IR below needs
neither."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Optional

from . import serialize
from .executor import run_graph
from .ir import GraphIR


class Graph(GraphIR):
    """A traced computation (see `GraphIR`): ``graph(*tensors)`` runs it on the devices of its inputs
    (or of ``od.device``); ``graph.save(path)`` writes it without pickle."""

    @classmethod
    def of(cls, ir: GraphIR) -> "Graph":
        """``ir`` as a `Graph` (the same object when it already is one)."""
        if isinstance(ir, cls):
            return ir
        return cls(**{f.name: getattr(ir, f.name) for f in fields(ir)})

    def __call__(self, *args: Any) -> Any:
        """Run the graph: one tensor for one output, else a tuple."""
        outs = run_graph(self, args)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def save(self, path: str) -> None:
        """Write ``path`` (``.json`` added when missing): one JSON file holding the structure and the
        constants, written atomically (the old file or the new one, never a mixture); see
        `opdispatch.load_graph`, which also reads the JSON + ``.npz`` pairs of format version 1."""
        serialize.save(self, path)


def load_graph(path: str, *, max_bytes: Optional[int] = None) -> Graph:
    """Read a graph written by `Graph.save` (either format version); a malformed, tampered or foreign
    file raises `GraphFormatError` naming the file and the part at fault. ``max_bytes`` bounds what
    the file may hold (default ``opdispatch.graph.serialize.MAX_BYTES``)."""
    return Graph.of(serialize.load_graph(path, max_bytes=max_bytes))
