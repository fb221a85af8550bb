"""What runs a graph node on its device: the kernel dispatch chooses for the node's signature
(`opdispatch.dispatch.choose`, so providers, priorities and ``supports()`` are decided once, when
a graph is compiled), or a copy between devices."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from ..dispatch import Choice, check_values, choose
from ..errors import KernelError
from ..ops import OPS
from ..registry import registry
from ..runtime import DeviceRuntime
from ..schema import OpSchema, TensorMeta

if TYPE_CHECKING:
    from .ir import GraphIR, Node


def node_metas(graph: GraphIR, node: Node) -> list[Optional[TensorMeta]]:
    """The shape and dtype of each input of ``node`` (None where an optional input is absent)."""
    return [None if v is None else TensorMeta(graph.values[v].shape, graph.values[v].dtype) for v in node.inputs]


def node_choice(graph: GraphIR, node: Node, rt: Optional[DeviceRuntime] = None) -> Choice:
    """What runs ``node`` on ``rt`` (default: its own device)."""
    rt = rt if rt is not None else registry().runtime(node.device)
    return choose(rt, OPS[node.op], node_metas(graph, node), dict(node.attrs), graph.values[node.outputs[0]].dtype)


def has_kernel(rt: DeviceRuntime, op: str, metas: Sequence[Optional[TensorMeta]], attrs: dict,
               dtype: np.dtype) -> bool:
    """True when ``rt`` runs ``op`` on these inputs with a kernel of its own (not a decomposition)."""
    return choose(rt, OPS[op], metas, attrs, dtype).fn is not None


def _copy_fn(src: DeviceRuntime, dst: DeviceRuntime) -> Callable[[Any], Any]:
    def copy(data: Any, **attrs: Any) -> Any:
        return dst.from_numpy(src.to_numpy(data, src.device), dst.device)
    return copy


def _checked(fn: Callable[..., Any], schema: OpSchema, rt: DeviceRuntime, metas: list) -> Callable[..., Any]:
    def run(*datas: Any, **attrs: Any) -> Any:
        check_values(schema, rt, datas, metas, attrs)
        return fn(*datas, **attrs)
    return run


def node_function(graph: GraphIR, node: Node) -> Callable[..., Any]:
    """The callable that runs ``node`` on its device (its kernel or a copy)."""
    reg = registry()
    rt = reg.runtime(node.device)
    if node.op == "copy":
        src_dev = graph.values[node.inputs[0]].device  # type: ignore[index]
        return _copy_fn(reg.runtime(src_dev) if src_dev is not None else rt, rt)
    choice = node_choice(graph, node, rt)
    if choice.fn is None:
        raise KernelError(f"{node.describe()}: backend {rt.backend!r} on {rt.device} has no kernel for it"
                          + (f" ({choice.reason})" if choice.reason else " (it is decomposed when the graph is "
                                                                         "lowered)"))
    fn = choice.fn
    if node.layout and node.layout in choice.layouts:  # the layout pass chose it for this kernel
        fn = functools.partial(fn, layout=node.layout)
    schema = OPS[node.op]
    if schema.check_values is None:
        return fn
    return _checked(fn, schema, rt, node_metas(graph, node))
