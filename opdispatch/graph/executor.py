"""Run a placed graph: each node's kernel on its device's runtime, buffers dropped after last use.

`Executable` compiles a placed `GraphIR` once into a flat list of steps over numbered slots;
constants are uploaded to the devices that read them at compile time. Each run releases a
value's data as soon as the memory plan says its last reader has run, so the backend's memory
can be reused by the next kernel. A kernel that fails is reported with the node, its op and
the user's line that created it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..errors import InvalidArgumentError, OpDispatchError
from ..placement import current_placement
from .. import random, recording
from ..dispatch import check_results, current_pin, kernel_error
from ..fpstate import quiet, restore
from ..schema import TensorMeta
from ..registry import registry
from ..runtime import DeviceRuntime
from ..tensor import Tensor, host_array, make, tensor
from .kernels import node_choice, node_function
from .pipeline import lower

if TYPE_CHECKING:
    from .ir import GraphIR, Node


def node_error(node: Node, rt: DeviceRuntime, provider: str, exc: BaseException) -> BaseException:
    """The error to raise when ``node``'s kernel (from ``provider``) raised ``exc``: the `KernelError` of
    `opdispatch.dispatch.kernel_error`, or opdispatch's own error, naming the node, op and user line
    (`KeyboardInterrupt` as it is). Raise it as it is (no ``from``): it has ``exc`` as its cause."""
    err = kernel_error(node.op, rt, exc, provider)
    if isinstance(err, OpDispatchError):
        where = f" [in graph node {node.describe()}]"
        if err.args and isinstance(err.args[0], str) and where not in err.args[0]:
            err.args = (err.args[0] + where,) + err.args[1:]
    return err


class Executable:
    """A placed graph compiled into steps ``(fn, input slots, output slots, slots to free, attrs)``."""

    def __init__(self, graph: GraphIR) -> None:
        reg = registry()
        self.graph = graph
        slot: dict[Any, int] = {}

        def slot_of(key: Any) -> int:
            return slot.setdefault(key, len(slot))

        self.input_slots = [slot_of(v) for v in graph.inputs]
        self.constants: list[tuple[int, Any]] = []
        frees = graph.memory.free_after if graph.memory is not None else [()] * len(graph.nodes)
        self.steps: list[tuple] = []
        for node, free in zip(graph.nodes, frees):
            rt = reg.runtime(node.device)
            ins = []
            for v in node.inputs:
                if v is None:
                    ins.append(-1)
                elif v in graph.constants:
                    key = (v, node.device)
                    if key not in slot:
                        self.constants.append((slot_of(key), rt.from_numpy(graph.constants[v], rt.device)))
                    ins.append(slot[key])
                else:
                    ins.append(slot_of(v))
            outs = tuple(slot_of(v) for v in node.outputs)
            dead = tuple(slot[v] for v in free if v in slot and v not in graph.constants)
            fn = node_function(graph, node)
            promised = [TensorMeta(graph.values[v].shape, graph.values[v].dtype) for v in node.outputs]
            provider = "" if node.op == "copy" else node_choice(graph, node, rt).provider
            self.steps.append((fn, tuple(ins), outs, dead, dict(node.attrs), node, rt, provider, promised))
        self.outputs = []
        for v in graph.outputs:
            info = graph.values[v]
            dev = info.device if info.device is not None and reg.has_device(info.device) \
                else current_placement().device
            if v in graph.constants:
                rt = reg.runtime(dev)
                self.constants.append((slot_of((v, dev)), rt.from_numpy(graph.constants[v], rt.device)))
                self.outputs.append((slot[(v, dev)], info, rt))
            else:
                self.outputs.append((slot_of(v), info, reg.runtime(dev)))
        self.n_slots = len(slot)
        self.n_seeds = max((random.seed_count(step[4]) for step in self.steps), default=0)  # od.random draws per run

    def run(self, datas: Sequence[Any]) -> list[Tensor]:
        """Run on the backend arrays of the inputs; return the output tensors."""
        env: list[Any] = [None] * self.n_slots
        for s, d in zip(self.input_slots, datas):
            env[s] = d
        for s, d in self.constants:
            env[s] = d
        watchers = [r for r in recording.active() if hasattr(r, "check_node")]  # od.check_numerics()
        seeds = random.run_seeds(self.n_seeds) if self.n_seeds else None  # dropout with seed=None: fresh per run
        token = quiet()  # NumPy's floating-point errors off for the whole run: IEEE results, no warnings
        try:
            for fn, ins, outs, dead, attrs, node, rt, provider, promised in self.steps:
                args = [env[i] if i >= 0 else None for i in ins]
                if seeds is not None:
                    attrs = random.with_run_seeds(attrs, seeds)
                try:
                    results = check_results(node.op, rt, provider, fn(*args, **attrs), promised)
                except BaseException as exc:
                    raise node_error(node, rt, provider, exc)  # noqa: B904 - it sets the cause
                for watcher in watchers:
                    watcher.check_node(node, rt, args, results)
                for s, r in zip(outs, results):
                    env[s] = r
                for s in dead:
                    env[s] = None
        finally:
            restore(token)
        return [make(env[s], info.shape, info.dtype, rt) for s, info, rt in self.outputs]


def as_inputs(graph: GraphIR, args: Sequence[Any]) -> list[Tensor]:
    """Check the arguments of a graph call against its inputs; array-likes become tensors."""
    if len(args) != len(graph.inputs):
        raise InvalidArgumentError(f"graph {graph.name}: got {len(args)} argument(s); allowed: exactly "
                                   f"{len(graph.inputs)} ({', '.join(str(graph.values[v]) for v in graph.inputs)})")
    out = []
    for i, (a, v) in enumerate(zip(args, graph.inputs)):
        info = graph.values[v]
        t = a if isinstance(a, Tensor) else tensor(host_array(a, info.dtype, graph.name, f"input {i}"))
        if t.shape != info.shape or t.dtype != info.dtype:
            raise InvalidArgumentError(f"graph {graph.name}: input {i} got shape {t.shape} dtype {t.dtype.name}; "
                                       f"allowed: shape {info.shape} dtype {info.dtype.name} (the traced signature)")
        out.append(t)
    return out


PLAN_CACHE_LIMIT = 64  # compiled plans (devices, placement, options) a loaded graph keeps before starting over


def run_graph(graph: GraphIR, args: Sequence[Any], options: Optional[dict] = None) -> list[Tensor]:
    """Run ``graph`` on ``args``, placing it for their devices and the current `od.device` first."""
    inputs = as_inputs(graph, args)
    placement = current_placement()
    generation = registry().generation
    key = (tuple(t._rt.device for t in inputs), placement, None if options is None else tuple(sorted(options.items())),
           generation, current_pin())  # the kernels a compiled graph uses depend on both
    cache = graph._cache
    exe = cache.get(key)
    if exe is None:
        exe = Executable(lower(graph, [t.device for t in inputs], placement, options))
        for old in [k for k in cache if k[3] != generation]:  # compiled for kernels no longer in force
            del cache[old]
        if len(cache) >= PLAN_CACHE_LIMIT:
            cache.clear()
        cache[key] = exe
    return exe.run([t._data for t in inputs])
