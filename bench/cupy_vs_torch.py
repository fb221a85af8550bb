"""CuPy backend vs a peer: PyTorch CUDA when installed (and CUDA works), the NumPy backend otherwise.

Run: python bench/cupy_vs_torch.py [--device cupy:0] [--peer auto|torch|numpy] [--dtype float32]
                                   [--min-time 0.3] [--quick] [--json out.json]

Workloads (NCHW, OIHW), float32 by default:
  conv2d (a) 128x1x28x28,  32 filters 5x5, SAME        (b) 128x32x14x14, 64 filters 5x5, SAME
  conv2d (c) 32x64x56x56,  64 filters 3x3, pad 1       (d) 8x3x224x224,  64 filters 7x7, stride 2, pad 3
  matmul 128x3136 @ 3136x1024;   max_pool2d 2x2 stride 2 on 128x32x28x28
Each time is the best of several timed blocks, each block ended by a device synchronisation (CuPy:
the device's synchronize(); PyTorch: torch.cuda.synchronize()), so queued GPU work is counted.
Prints milliseconds per call and the ratio od / peer (below 1: the CuPy backend is faster), and the
largest difference between the two results as a sanity check. PyTorch runs with TF32 off unless
--tf32, so both sides compute in true float32 (CuPy does not use TF32 unless CUPY_TF32=1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

import opdispatch as od


@dataclass(frozen=True)
class Workload:
    """One benchmarked call: its inputs' shapes and the od attributes (torch gets the same pads)."""

    name: str
    op: str
    shapes: tuple[tuple[int, ...], ...]
    attrs: dict
    torch_pad: tuple[int, int] = (0, 0)  # symmetric (h, w) padding equivalent to attrs["padding"]


WORKLOADS = [
    Workload("conv2d (a) 128x1x28x28 * 32x1x5x5 SAME", "conv2d", ((128, 1, 28, 28), (32, 1, 5, 5)),
             {"padding": "SAME"}, (2, 2)),
    Workload("conv2d (b) 128x32x14x14 * 64x32x5x5 SAME", "conv2d", ((128, 32, 14, 14), (64, 32, 5, 5)),
             {"padding": "SAME"}, (2, 2)),
    Workload("conv2d (c) 32x64x56x56 * 64x64x3x3 pad 1", "conv2d", ((32, 64, 56, 56), (64, 64, 3, 3)),
             {"padding": 1}, (1, 1)),
    Workload("conv2d (d) 8x3x224x224 * 64x3x7x7 s2 pad 3", "conv2d", ((8, 3, 224, 224), (64, 3, 7, 7)),
             {"padding": 3, "stride": 2}, (3, 3)),
    Workload("matmul 128x3136 @ 3136x1024", "matmul", ((128, 3136), (3136, 1024)), {}),
    Workload("max_pool2d 2x2/2 on 128x32x28x28", "max_pool2d", ((128, 32, 28, 28),), {"kernel_size": 2}),
]


def best_ms(fn: Callable[[], Any], sync: Callable[[], None], min_time: float, max_calls: int = 200) -> float:
    """Best block mean, in ms per call: warm up, then time blocks of calls, each closed by ``sync``."""
    fn()
    sync()  # warm-up: cuBLAS handles, kernel compilation, memory pool
    start = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - start, 1e-6)
    per_block = int(min(max(min_time / 5 / one, 1), max_calls))
    best, spent = float("inf"), 0.0
    while spent < min_time or best == float("inf"):
        start = time.perf_counter()
        for _ in range(per_block):
            fn()
        sync()
        elapsed = time.perf_counter() - start
        spent += elapsed
        best = min(best, elapsed / per_block)
    return best * 1e3


def od_sync(dev: od.Device) -> Callable[[], None]:
    """Wait for the device's queued work (CuPy devices); nothing to wait for on the CPU."""
    if dev.backend != "cupy":
        return lambda: None
    import cupy

    device = cupy.cuda.Device(dev.index)
    return device.synchronize


def od_call(w: Workload, arrays: list[np.ndarray], dev: od.Device) -> Callable[[], Any]:
    tensors = [od.tensor(a, device=dev) for a in arrays]
    fn = getattr(od, w.op)
    return lambda: fn(*tensors, **w.attrs)


def torch_peer(tf32: bool) -> Optional[Any]:
    """torch, when it is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    return torch


def torch_call(torch: Any, w: Workload, arrays: list[np.ndarray]) -> Callable[[], Any]:
    ts = [torch.from_numpy(a).cuda() for a in arrays]
    F = torch.nn.functional
    if w.op == "conv2d":
        return lambda: F.conv2d(ts[0], ts[1], stride=w.attrs.get("stride", 1), padding=w.torch_pad)
    if w.op == "matmul":
        return lambda: ts[0] @ ts[1]
    return lambda: F.max_pool2d(ts[0], w.attrs["kernel_size"])


def to_host(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value.numpy())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cupy:0", help="the device under test (default cupy:0)")
    parser.add_argument("--peer", choices=["auto", "torch", "numpy"], default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds of timed calls per measurement")
    parser.add_argument("--quick", action="store_true", help="shrink every batch dimension to 2 (smoke test)")
    parser.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 (faster, less exact)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    dev = od.Device(args.device)
    if dev not in od.devices():
        status = od.backends().get(dev.backend)
        print(f"bench: {dev} is not available: {status or 'no such backend'}", file=sys.stderr)
        return 2
    torch = None if args.peer == "numpy" else torch_peer(args.tf32)
    if args.peer == "torch" and torch is None:
        print("bench: --peer torch, but PyTorch is not installed or sees no CUDA device", file=sys.stderr)
        return 2
    peer_name = f"torch {torch.__version__} cuda:0" if torch is not None else "opdispatch numpy:0"
    print(f"device under test: {dev} ({args.dtype}); peer: {peer_name}"
          + ("" if torch is None else f"; TF32 {'on' if args.tf32 else 'off'}"))
    sync = od_sync(dev)
    peer_sync = torch.cuda.synchronize if torch is not None else (lambda: None)
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'workload':<46}{'od ms':>10}{'peer ms':>10}{'od/peer':>9}{'max|diff|':>11}")
    for w in WORKLOADS:
        shapes = [((2,) + s[1:]) if args.quick and len(s) == 4 else s for s in w.shapes]
        arrays = [rng.standard_normal(s).astype(args.dtype) for s in shapes]
        ours = od_call(w, arrays, dev)
        peer = torch_call(torch, w, arrays) if torch is not None else od_call(w, arrays, od.Device("numpy:0"))
        ms = best_ms(ours, sync, args.min_time)
        peer_ms = best_ms(peer, peer_sync, args.min_time)
        diff = float(np.max(np.abs(to_host(ours()).astype(np.float64) - to_host(peer()).astype(np.float64))))
        rows.append({"workload": w.name, "od_ms": ms, "peer_ms": peer_ms, "ratio": ms / peer_ms, "max_abs_diff": diff})
        print(f"{w.name:<46}{ms:>10.3f}{peer_ms:>10.3f}{ms / peer_ms:>8.2f}x{diff:>11.2e}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": str(dev), "peer": peer_name, "dtype": args.dtype, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
