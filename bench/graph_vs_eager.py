"""Graph vs eager: forward + backward of the TensorFlow-tutorial MNIST CNN at batch 128 on numpy:0.

conv 5x5x32 SAME -> relu -> maxpool 2 -> conv 5x5x64 SAME -> relu -> maxpool 2 -> flatten ->
dense 3136->1024 (matmul + bias add) -> relu -> dense 10 -> softmax_cross_entropy; random data.

Run: python bench/graph_vs_eager.py [--repeat 7] [--batch 128] [--json out.json]
Prints the median seconds per step of each (eager and graph steps interleaved), the eager/graph time ratio, and the peak memory of
one step of each (tracemalloc peak above what was allocated before the step: NumPy reports its
allocations to tracemalloc; the backend's scratch buffers are released first, so they count). Target (issue 5): graph >= 1.15x faster, peak memory <= 0.8x eager.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc
from typing import Any, Callable

import numpy as np

import opdispatch as od


def make_inputs(batch: int, seed: int = 0) -> tuple[od.Tensor, od.Tensor, list[od.Tensor]]:
    """Random images, labels and parameters (float32, numpy:0)."""
    rng = np.random.default_rng(seed)

    def param(*shape: int, fan_in: int) -> od.Tensor:
        return od.tensor((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32))

    params = [param(32, 1, 5, 5, fan_in=25), param(32, fan_in=1) * 0.0,
              param(64, 32, 5, 5, fan_in=800), param(64, fan_in=1) * 0.0,
              param(3136, 1024, fan_in=3136), param(1024, fan_in=1) * 0.0,
              param(1024, 10, fan_in=1024), param(10, fan_in=1) * 0.0]
    x = od.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    labels = od.tensor(rng.integers(0, 10, batch))
    return x, labels, params


def step(x: od.Tensor, labels: od.Tensor, params: list) -> tuple[Any, list]:
    """Loss and the gradient of every parameter, written functionally."""
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    with od.GradientTape() as tape:
        tape.watch(params)
        h = od.max_pool2d(od.relu(od.conv2d(x, w1, b1, padding="SAME")), 2)
        h = od.max_pool2d(od.relu(od.conv2d(h, w2, b2, padding="SAME")), 2)
        h = od.relu(od.matmul(od.flatten(h), w3) + b3)
        logits = od.matmul(h, w4) + b4
        loss = od.softmax_cross_entropy(logits, labels)
    return loss, tape.gradient(loss, params)


def seconds(fns: list[Callable[[], Any]], repeat: int) -> list[tuple[float, float]]:
    """(median, best) wall seconds per call of each of ``fns``, calls interleaved (so changes in the
    machine's load hit both alike)."""
    for fn in fns:
        fn()  # warm-up (traces the graph)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [(statistics.median(ts), min(ts)) for ts in times]


def _release_backend_scratch() -> None:
    """Drop the NumPy backend's reused scratch buffers, so that the measured step allocates (and
    counts) them again rather than hiding them in memory allocated before the step."""
    try:
        from opdispatch_numpy.scratch import clear
    except ImportError:
        return
    clear()


def peak_bytes(fn: Callable[[], Any]) -> int:
    """tracemalloc peak above the memory allocated before one call of ``fn`` (its result dropped)."""
    fn()  # warm-up (traces the graph)
    _release_backend_scratch()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return peak - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    x, labels, params = make_inputs(args.batch)
    graph_step = od.function(step)
    loss_e, grads_e = step(x, labels, params)
    loss_g, grads_g = graph_step(x, labels, params)
    worst = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(grads_e, grads_g))
    print(f"loss eager {float(loss_e):.6f} graph {float(loss_g):.6f}; max |grad difference| {worst:.2e}")

    (t_eager, b_eager), (t_graph, b_graph) = seconds([lambda: step(x, labels, params),
                                                      lambda: graph_step(x, labels, params)], args.repeat)
    m_eager = peak_bytes(lambda: step(x, labels, params))
    m_graph = peak_bytes(lambda: graph_step(x, labels, params))
    rows = {"eager_s": t_eager, "graph_s": t_graph, "speedup": t_eager / t_graph,
            "eager_best_s": b_eager, "graph_best_s": b_graph, "speedup_best": b_eager / b_graph,
            "eager_peak_mb": m_eager / 2**20, "graph_peak_mb": m_graph / 2**20, "memory_ratio": m_graph / m_eager}
    print(f"batch {args.batch}, median of {args.repeat} steps (forward + backward) on numpy:0")
    print(f"  eager  {t_eager * 1e3:8.1f} ms/step (best {b_eager * 1e3:.1f})   peak {m_eager / 2**20:7.1f} MiB")
    print(f"  graph  {t_graph * 1e3:8.1f} ms/step (best {b_graph * 1e3:.1f})   peak {m_graph / 2**20:7.1f} MiB")
    print(f"  graph speed-up {rows['speedup']:.2f}x median, {rows['speedup_best']:.2f}x best (target >= 1.15x); "
          f"graph/eager peak memory {rows['memory_ratio']:.2f} (target <= 0.8)")
    g = graph_step.graph(x, labels, params)
    print(f"  graph: {len(g.nodes)} nodes, ops {sorted(set(g.ops()))}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
