"""Placement: give each node a device and insert explicit copy nodes where data must move.

The rules are eager dispatch's: a node runs on the device of its tensor inputs (constants go
wherever they are read); a node without tensor inputs runs on the device of ``od.device``.
Inputs on different devices, or a device without a kernel for the node, are an error under the
default policy; under ``fallback='warn'`` / ``'record'`` the data is copied (copy nodes in the
graph), the decision goes to ``od.placement_log()`` (and warns), and results come back to the
device the node was placed on, as in eager mode.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence, Union, cast

from ..device import Device
from ..errors import DeviceMismatchError, OpDispatchError, UnsupportedError
from ..placement import Placement, PlacementEvent
from ..placement import report as _report
from ..registry import registry
from ..runtime import DeviceRuntime
from ..schema import TensorMeta
from .ir import GraphIR, Node, make_node
from ..dispatch import choose, fallback_runtime, why_unsupported
from ..ops import OPS
from .passes.decompose import decomposition_problem

_HINT = "; to run it elsewhere, allow a fallback: with od.device(None, fallback='warn')"


def place(graph: GraphIR, input_devices: Sequence[Union[str, Device]], placement: Placement) -> GraphIR:
    """``graph`` placed for inputs on ``input_devices`` under ``placement`` (earlier automatic copies
    are dropped and placement starts over, so a placed or loaded graph can be placed again)."""
    reg = registry()
    values = dict(graph.values)
    alias: dict[int, int] = {}
    for node in graph.nodes:
        if node.op == "copy" and node.attrs.get("auto"):
            src = cast(int, node.inputs[0])  # a copy has its one input
            alias[node.outputs[0]] = alias.get(src, src)
            del values[node.outputs[0]]
    for v, dev in zip(graph.inputs, input_devices):
        values[v] = replace(values[v], device=Device(dev))
    next_id = [max(graph.values, default=-1) + 1]
    nodes: list[Node] = []
    copies: dict[tuple[int, Device], int] = {}

    def new_value(like: int, dev: Device) -> int:
        vid = next_id[0]
        next_id[0] += 1
        values[vid] = replace(values[like], device=dev)
        return vid

    def moved(v: Optional[int], dev: Device, node: Node) -> Optional[int]:
        if v is None or v in graph.constants or values[v].device == dev:
            return v
        if (v, dev) not in copies:
            copies[(v, dev)] = new_value(v, dev)
            nodes.append(make_node("copy", [v], [copies[(v, dev)]], {"device": str(dev), "auto": True}, dev,
                                   node.sources))
        return copies[(v, dev)]

    for node in graph.nodes:
        if node.op == "copy" and node.attrs.get("auto"):
            continue
        ins = [None if v is None else alias.get(v, v) for v in node.inputs]
        if node.op == "copy":  # an explicit .to(device) of the user
            target = Device(node.attrs["device"])
            _runtime(reg, target, node)
            values[node.outputs[0]] = replace(values[node.outputs[0]], device=target)
            nodes.append(replace(node, inputs=tuple(ins), device=target))
            continue
        home = _home(node, ins, values, graph, placement)
        rt = _runtime(reg, home, node)
        metas = [None if v is None else TensorMeta(values[v].shape, values[v].dtype) for v in ins]
        dtype = values[node.outputs[0]].dtype
        reason = why_unsupported(rt, OPS[node.op], metas, dict(node.attrs), dtype)
        if reason is None and node_choice_decomposes(rt, node.op, metas, dict(node.attrs), dtype):
            reason = decomposition_problem(node.op, rt, metas, dict(node.attrs))  # its calls' supports() too
        run_on = home
        if reason is not None:
            if placement.fallback == "error":
                raise UnsupportedError(f"{node.describe()}: cannot run on {home}: {reason}{_HINT}")
            other = _fallback(reg, rt, node, metas, dtype)
            if other is None:
                raise UnsupportedError(f"{node.describe()}: cannot run on {home}: {reason} and no other device "
                                       f"can run it")
            _report(placement, PlacementEvent(node.op, home, other.device, f"{reason} (graph node created at "
                                                                           f"{node.where()})"))
            run_on = other.device
        ins = [moved(v, run_on, node) for v in ins]
        outs = node.outputs if run_on == home else tuple(new_value(o, run_on) for o in node.outputs)
        for o in outs:
            values[o] = replace(values[o], device=run_on)
        nodes.append(replace(node, inputs=tuple(ins), outputs=outs, device=run_on))
        for theirs, ours in zip(outs, node.outputs):
            if theirs != ours:  # results come home, as in eager mode
                values[ours] = replace(values[ours], device=home)
                nodes.append(make_node("copy", [theirs], [ours], {"device": str(home), "auto": True}, home,
                                       node.sources))
    outputs = tuple(alias.get(v, v) for v in graph.outputs)
    return graph.replace(nodes=tuple(nodes), values=values, outputs=outputs)


def _home(node: Node, ins: list, values: dict, graph: GraphIR, placement: Placement) -> Device:
    devices: dict[Device, int] = {}
    for pos, v in enumerate(ins):
        if v is not None and v not in graph.constants:
            devices.setdefault(values[v].device, pos)
    if not devices:  # constants only: where they were made (when that device is here), as eager would
        made = [values[v].device for v in ins if v is not None and values[v].device is not None]
        reg = registry()
        return next((d for d in made if reg.has_device(d)), placement.device)
    if len(devices) == 1:
        return next(iter(devices))
    listing = ", ".join(f"input {pos} on {dev}" for dev, pos in devices.items())
    if placement.fallback == "error":
        raise DeviceMismatchError(f"{node.describe()}: inputs live on different devices ({listing}); allowed: "
                                  f"every input on one device -- move one with .to(device), or allow copies "
                                  f"with od.device(None, fallback='warn')")
    target = placement.device if placement.device in devices else next(iter(devices))
    _report(placement, PlacementEvent(node.op, target, target, f"copied {listing} to {target} (graph node created "
                                                               f"at {node.where()})"))
    return target


def _runtime(reg, dev: Device, node: Node) -> DeviceRuntime:
    try:
        return reg.runtime(dev)
    except OpDispatchError as exc:
        raise type(exc)(f"{exc} [placing graph node {node.describe()}]") from None


def node_choice_decomposes(rt: DeviceRuntime, op: str, metas: list, attrs: dict, dtype) -> bool:
    """Whether ``rt`` runs this node as its op's decomposition."""
    return choose(rt, OPS[op], metas, attrs, dtype).decompose


def _fallback(reg, rt: DeviceRuntime, node: Node, metas, dtype) -> Optional[DeviceRuntime]:
    found = fallback_runtime(rt, OPS[node.op], metas, dict(node.attrs), dtype)
    return None if found is None else found[0]
