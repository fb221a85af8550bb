"""What the ctypes binding of the oneDNN provider costs per call, against the work of the call.

Run: python bench/onednn_overhead.py

Prints, interleaved in one process (medians of alternating repetitions, in microseconds):
- one ctypes call into libdnnl (``dnnl_memory_set_data_handle``), the unit of the binding's cost;
- ``Primitive.run`` of a tiny conv2d (1x1x4x4 by 1x1x3x3: oneDNN's own work is next to nothing),
  and how many ctypes calls it makes;
- the whole eager ``od.conv2d`` of that tiny conv on the oneDNN provider and on the NumPy kernel;
- the whole eager ``od.conv2d`` of conv_b (128x32x14x14 by 64x32x5x5) on the oneDNN provider.
A compiled extension would make each of the run's ctypes calls a C call (tens of nanoseconds); the
difference it can make is at most the ctypes calls' share of the run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

import opdispatch as od


def _median_us(fn: Callable[[], Any], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner * 1e6


def main() -> None:
    from opdispatch_onednn import conv, library
    from opdispatch_onednn.primitives import contiguous

    lib = library.load()
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((1, 1, 4, 4), dtype=np.float32), rng.standard_normal((1, 1, 3, 3), dtype=np.float32)
    a = {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1), "groups": 1}
    prim = conv._primitive("conv2d", xa.shape, wa.shape, a)
    y = np.empty((1, 1, 2, 2), np.float32)
    arrays = {library.ARG_SRC: contiguous(xa), library.ARG_WEIGHTS: contiguous(wa), library.ARG_DST: y}
    mem = prim._bound().user[library.ARG_SRC].handle
    addr = xa.ctypes.data
    x, w = od.tensor(xa), od.tensor(wa)
    xb = od.tensor(rng.standard_normal((128, 32, 14, 14), dtype=np.float32))
    wb = od.tensor(rng.standard_normal((64, 32, 5, 5), dtype=np.float32))

    def pinned(provider: str, *args: Any) -> Callable[[], Any]:
        def run() -> Any:
            with od.use_provider(provider):
                return od.conv2d(*args)
        return run

    rows: dict[str, tuple[Callable[[], Any], int]] = {
        "one ctypes call (dnnl_memory_set_data_handle)": (lambda: lib.dnnl_memory_set_data_handle(mem, addr), 2000),
        "Primitive.run, tiny conv2d": (lambda: prim.run(arrays), 500),
        "od.conv2d tiny, onednn": (pinned("onednn", x, w), 300),
        "od.conv2d tiny, numpy": (pinned("numpy", x, w), 300),
        "od.conv2d conv_b, onednn": (pinned("onednn", xb, wb), 1),
    }
    for fn, _ in rows.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(9):
        for name, (fn, inner) in rows.items():
            times[name].append(_median_us(fn, inner))
    b = prim._bound()
    calls = len(b.user) + len(b.inner) + len(b.extra) + (b.scratch is not None) + 2 * len(prim.reordered) + 3
    for name, v in times.items():
        print(f"{name:<50} {statistics.median(v):>10.2f} us")
    print(f"ctypes calls per Primitive.run of the tiny conv2d: {calls} (set handles, reorders, execute, stream "
          f"wait, the stream and pool look-ups aside)")


if __name__ == "__main__":
    main()
