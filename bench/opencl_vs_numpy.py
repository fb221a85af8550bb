"""OpenCL backend vs the NumPy backend, in the same run: float32 GEMM and four conv2d shapes.

Run: python bench/opencl_vs_numpy.py [--device opencl:0] [--repeat 5] [--json out.json]
Prints, per workload, the best-of-``repeat`` time on each backend, GFLOP/s and the ratio.
Targets (issue 6): the 1024x1024 float32 GEMM reaches at least 25% of NumPy's GFLOP/s; each conv
shape runs within 5x of the NumPy backend. Timings of the OpenCL device wait for its queue.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np

import opdispatch as od

# (name, x shape, w shape, conv2d attributes)
CONV_SHAPES = [
    ("a: 128x1x28x28, 32 5x5, SAME", (128, 1, 28, 28), (32, 1, 5, 5), {"padding": "SAME"}),
    ("b: 128x32x14x14, 64 5x5, SAME", (128, 32, 14, 14), (64, 32, 5, 5), {"padding": "SAME"}),
    ("c: 32x64x56x56, 64 3x3, pad 1", (32, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
    ("d: 8x3x224x224, 64 7x7, s2 p3", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
]


def sync(t: Any) -> None:
    """Wait until the device that holds ``t`` has finished its queued work."""
    queue = getattr(getattr(t.data, "dev", None), "queue", None)
    if queue is not None:
        queue.finish()


def best_s(fn: Callable[[], Any], repeat: int) -> float:
    """Best-of-``repeat`` seconds of ``fn()`` (its result synchronised), after one warm-up call."""
    sync(fn())
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def conv_flops(x: tuple, w: tuple, y: tuple) -> float:
    """Multiply-adds x 2 of a dense conv2d producing ``y``."""
    return 2.0 * np.prod(y) * w[1] * w[2] * w[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="opencl:0")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--gemm", type=int, default=1024, help="GEMM size n (n x n times n x n)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []

    n = args.gemm
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    times = {}
    for dev in ("numpy:0", args.device):
        ta, tb = od.tensor(a, device=dev), od.tensor(b, device=dev)
        times[dev] = best_s(lambda: od.matmul(ta, tb), args.repeat)
    rows.append((f"matmul {n}x{n} float32", 2.0 * n ** 3, times["numpy:0"], times[args.device]))

    for name, xs, ws, attrs in CONV_SHAPES:
        x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        times = {}
        for dev in ("numpy:0", args.device):
            tx, tw = od.tensor(x, device=dev), od.tensor(w, device=dev)
            times[dev] = best_s(lambda: od.conv2d(tx, tw, **attrs), args.repeat)
            out_shape = od.conv2d(tx, tw, **attrs).shape
        rows.append((f"conv2d {name}", conv_flops(xs, ws, out_shape), times["numpy:0"], times[args.device]))

    print(f"{'workload':<42}{'numpy ms':>10}{'opencl ms':>11}{'numpy GF/s':>12}{'opencl GF/s':>13}"
          f"{'opencl/numpy speed':>20}")
    report = []
    for name, flops, t_np, t_cl in rows:
        ratio = t_np / t_cl
        print(f"{name:<42}{t_np * 1e3:>10.2f}{t_cl * 1e3:>11.2f}{flops / t_np / 1e9:>12.1f}"
              f"{flops / t_cl / 1e9:>13.1f}{ratio:>19.2f}x")
        report.append({"workload": name, "flops": flops, "numpy_s": t_np, "opencl_s": t_cl, "speed_ratio": ratio})
    gemm_ratio = report[0]["speed_ratio"]
    conv_slowest = min(r["speed_ratio"] for r in report[1:])
    print(f"\nGEMM: {gemm_ratio:.0%} of NumPy's GFLOP/s (target >= 25%): {'met' if gemm_ratio >= 0.25 else 'NOT met'}")
    print(f"conv2d: slowest shape at {1 / conv_slowest:.2f}x NumPy's time (target <= 5x): "
          f"{'met' if conv_slowest >= 0.2 else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": args.device, "rows": report}, fh, indent=2)


if __name__ == "__main__":
    main()
