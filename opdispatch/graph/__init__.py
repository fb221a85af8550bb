"""The graph frontend: ``od.function`` traces Python functions into an optimisable, inspectable IR.

Modules: `ir` (the IR: GraphIR, Node), `graph` (`Graph`, the IR users hold: runnable and
saveable), `trace` (the tracer and symbolic tensors), `function` (the decorator and its signature
cache), `passes` (one GraphIR -> GraphIR function each), `placement`, `kernels` (what runs a node),
`executor`, `serialize` (save / load without pickle), `source` (the user's source lines).
"""

from __future__ import annotations

from .errors import GraphError, GraphFormatError, GraphTraceError
from .function import Function, GraphRetraceWarning, function
from .graph import Graph, load_graph
from .ir import GraphIR, MemoryPlan, Node, ValueInfo

__all__ = ["function", "Function", "Graph", "GraphIR", "Node", "ValueInfo", "MemoryPlan", "load_graph", "GraphError",
           "GraphTraceError", "GraphFormatError", "GraphRetraceWarning"]
