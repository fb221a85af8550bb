"""Memory planning: free each value right after its last reader and share buffers between values
whose lifetimes do not overlap.

The executor drops its reference to a value as soon as the plan says so, so the backend can
reuse that memory for the next kernel (eager mode keeps every value a gradient tape recorded
alive until the gradient is done). ``buffer_of`` assigns each value a slot reused by later
values of the same size on the same device -- what a backend with ``out=`` kernels could write
into directly.
"""

from __future__ import annotations

from ..ir import GraphIR, MemoryPlan


def plan_memory(graph: GraphIR) -> GraphIR:
    """``graph`` with a `MemoryPlan` (graph inputs belong to the caller, constants to the graph)."""
    keep = set(graph.outputs) | set(graph.inputs) | set(graph.constants)
    last: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None:
                last[v] = i
    free_after: list[list[int]] = [[] for _ in graph.nodes]
    for v, i in last.items():
        if v not in keep:
            free_after[i].append(v)
    for i, node in enumerate(graph.nodes):
        free_after[i].extend(o for o in node.outputs if o not in last and o not in keep)
    pool: dict[tuple, list[int]] = {}
    buffer_of: dict[int, int] = {}
    alive = peak = total = slots = 0
    for i, node in enumerate(graph.nodes):
        for o in node.outputs:
            info = graph.values[o]
            key = (info.device, info.nbytes)
            free = pool.get(key)
            if free:
                buffer_of[o] = free.pop()
            else:
                buffer_of[o], slots = slots, slots + 1
            alive += info.nbytes
            total += info.nbytes
        peak = max(peak, alive)
        for v in free_after[i]:
            info = graph.values[v]
            alive -= info.nbytes
            pool.setdefault((info.device, info.nbytes), []).append(buffer_of[v])
    plan = MemoryPlan(tuple(tuple(sorted(f)) for f in free_after), buffer_of, peak, total)
    return graph.replace(memory=plan)
