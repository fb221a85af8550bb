"""The pass pipeline and its switches.

``optimize`` runs the device-independent passes right after tracing; ``lower`` places the graph
for the devices of a call, expands the nodes a device runs as decompositions, then fuses for those
devices, chooses the kernels' result layouts (`passes.layout`) and plans memory. Every optional pass
is on by default; ``od.function(fn, passes={"fuse": False})`` switches one off (decomposition is not
optional: without it such a node cannot run).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

from ..device import Device
from ..placement import Placement
from ..errors import InvalidArgumentError
from .ir import GraphIR
from .passes import (choose_layouts, decompose, eliminate_common_subexpressions, eliminate_dead_code, fold_constants,
                     fuse, plan_memory)
from .placement import place

PASS_NAMES = ("constant_fold", "cse", "dce", "fuse", "layout", "memory")


def pass_options(passes: Optional[Mapping[str, Union[bool, str]]] = None) -> dict[str, Union[bool, str]]:
    """Every pass name -> on/off, from the switches given (unknown names are an error). ``"layout"`` also
    takes ``"all"``: every kernel that can write a channels-last result is asked to, wherever its result
    goes (graph outputs too); the conformance suite checks kernels' layouts that way."""
    opts: dict[str, Union[bool, str]] = dict.fromkeys(PASS_NAMES, True)
    for name, on in (passes or {}).items():
        if name not in opts:
            raise InvalidArgumentError(f"od.function: argument 'passes' got unknown pass {name!r}; allowed: "
                                       f"{', '.join(PASS_NAMES)}")
        if isinstance(on, str) and not (name == "layout" and on == "all"):
            also = " or 'all'" if name == "layout" else ""
            raise InvalidArgumentError(f"od.function: argument 'passes' got {on!r} for pass {name!r}; allowed: "
                                       f"True or False{also}")
        opts[name] = on if isinstance(on, str) else bool(on)
    return opts


def optimize(graph: GraphIR, opts: Mapping[str, Union[bool, str]]) -> GraphIR:
    """Constant folding, CSE and DCE (those switched on)."""
    if opts["constant_fold"]:
        graph = fold_constants(graph)
    if opts["cse"]:
        graph = eliminate_common_subexpressions(graph)
    if opts["dce"]:
        graph = eliminate_dead_code(graph)
    return graph


def lower(graph: GraphIR, devices: Sequence[Union[str, Device]], placement: Placement,
          options: Optional[Mapping[str, Union[bool, str]]] = None) -> GraphIR:
    """Place ``graph`` for inputs on ``devices``; fuse for those devices; choose result layouts; plan memory."""
    opts = pass_options(options)
    graph = decompose(place(graph, devices, placement))
    if opts["fuse"]:
        fused = fuse(graph)
        graph = optimize(fused, opts) if fused is not graph else graph
    if opts["layout"]:
        graph = choose_layouts(graph, everywhere=opts["layout"] == "all")
    if opts["memory"]:
        graph = plan_memory(graph)
    return graph
