"""The graph frontend: ``od.function`` traces Python functions into an optimisable, inspectable IR.

Modules: `ir` (Graph, Node), `trace` (the tracer and symbolic tensors), `function` (the
decorator and its signature cache), `passes` (one Graph -> Graph function each), `placement`,
`executor`, `serialize` (save / load without pickle), `source` (the user's source lines).
"""

from __future__ import annotations

from .errors import GraphError, GraphFormatError, GraphTraceError
from .function import Function, GraphRetraceWarning, function
from .ir import Graph, MemoryPlan, Node, ValueInfo
from .serialize import load_graph

__all__ = ["function", "Function", "Graph", "Node", "ValueInfo", "MemoryPlan", "load_graph", "GraphError",
           "GraphTraceError", "GraphFormatError", "GraphRetraceWarning"]
