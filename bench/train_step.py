"""One training step of the tutorial CNN (examples/cnn.py) at MNIST size, opdispatch vs PyTorch CPU.

Run: python bench/train_step.py [--device numpy:0] [--batch 128] [--steps 10] [--json out.json]

Both peers run the same network (conv 5x5x32 SAME, relu, pool 2, conv 5x5x64 SAME, relu, pool 2,
dense 3136->1024, relu, dense 10, softmax cross-entropy) on the same random 28x28 batch, with
SGD-momentum updates, float32, in this process. Prints the median ms per step of each and the
ratio (opdispatch / PyTorch). PyTorch is an optional peer (pip install -e '.[bench]'); without it
only opdispatch's figure is printed. Target (issue 4): within 3x of PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opdispatch as od  # noqa: E402
from cnn import init_params, train_step  # noqa: E402


def median_ms(step: Callable[[], object], steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def opdispatch_step(device: str, batch: int, x: np.ndarray, y: np.ndarray, params0: dict,
                    batch_norm: bool) -> Callable[[], float]:
    with od.device(device):
        params, state = init_params(np.random.default_rng(0), image_hw=(28, 28), batch_norm=batch_norm)
        params = {k: od.tensor(params0[k], device=device) if k in params0 else v for k, v in params.items()}
        opt = od.SGD(params, lr=0.01, momentum=0.9)
        xt = od.tensor(x, device=device)
    box = {"state": state}

    def step() -> float:
        with od.device(device):
            loss, box["state"] = train_step(opt, box["state"], xt, y)
        return loss

    return step


def torch_step(x: np.ndarray, y: np.ndarray) -> Optional[Callable[[], float]]:
    """PyTorch's step on the same data and initial parameters (bench/perf.py's peer), or None without it."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    from perf import _torch_train_step

    return _torch_train_step(torch, F, torch.from_numpy(x), torch.from_numpy(y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="numpy:0")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-norm", action="store_true", help="time the batch-norm variant (opdispatch only)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int64)
    params, _ = init_params(np.random.default_rng(1), image_hw=(28, 28))
    params0 = {k: v.numpy() for k, v in params.items()}

    rows = {f"opdispatch {args.device}": median_ms(opdispatch_step(args.device, args.batch, x, y, params0,
                                                                    args.batch_norm), args.steps)}
    peer = None if args.batch_norm else torch_step(x, y)
    if peer is not None:
        import torch

        rows[f"torch {torch.__version__} CPU ({torch.get_num_threads()} threads)"] = median_ms(peer, args.steps)
    else:
        print("peer: PyTorch is not installed (pip install -e '.[bench]'), or --batch-norm was asked",
              file=sys.stderr)
    print(f"training step, CNN at 28x28, batch {args.batch}, float32, median of {args.steps}")
    print(f"{'peer':<44}{'ms/step':>10}")
    for name, ms in rows.items():
        print(f"{name:<44}{ms:>10.1f}")
    figures = {"rows": rows}
    if len(rows) == 2:
        ours, theirs = rows.values()
        figures["ratio"] = ours / theirs
        print(f"\nratio opdispatch / torch: {ours / theirs:.2f}x (target <= 3x): "
              f"{'met' if ours / theirs <= 3 else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()
