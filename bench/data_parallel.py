"""Time per step of data-parallel training (opdispatch.distributed) with 1, 2 and 3 local Ray workers,
beside one process, on the digits CNN of examples/train_cnn.py.

Run: python bench/data_parallel.py [--batch 32] [--steps 10] [--rounds 3] [--device numpy:0] [--json out.json]

Peers, in the same run, interleaved round by round (so load changes hit every peer alike):
  single   one process, batch B, examples/cnn.py's train_step
  single*N one process, batch N*B (the update N workers compute)
  dp-N     N workers (Ray actors on a local Ray instance, one logical CPU each), batch B each, every
           worker on the same --device (one machine has one numpy:0)
Prints the median ms per step of each and the paired ratios dp-N / single (same examples per worker)
and dp-N / single*N (same global batch). On a machine with fewer cores than workers this measures
the overhead of the actors and the object store, not a speedup. Needs pip install 'opdispatch[ray,examples]'.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import opdispatch as od  # noqa: E402
from cnn import init_params, loss_fn, train_step  # noqa: E402
from opdispatch.distributed import DataParallel, epoch_batches  # noqa: E402
from train_cnn import load_digits_split  # noqa: E402
from train_cnn_ray import init_digits_cnn  # noqa: E402


def single_step(device: str, x: np.ndarray, y: np.ndarray, batch: int):
    with od.device(device):
        params, state = init_params(od.random.Generator(0), image_hw=(8, 8))
        opt = od.SGD(params, lr=0.05, momentum=0.9)
    batches = epoch_batches(np.random.default_rng(0), len(x), batch)
    box = {"state": state, "i": 0}

    def step() -> None:
        idx = batches[box["i"] % len(batches)]
        box["i"] += 1
        with od.device(device):
            _, box["state"] = train_step(opt, box["state"], od.tensor(x[idx], dtype="float32"), y[idx])
    return step


def main() -> None:
    import ray

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps per peer per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="numpy:0")
    p.add_argument("--workers", default="1,2,3")
    p.add_argument("--json")
    args = p.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    x, y, _, _ = load_digits_split(0)
    ray.init(num_cpus=sum(counts),  # every peer's actors live at once
             include_dashboard=False, log_to_driver=False)
    for mod in ("cnn", "train_cnn_ray"):
        ray.cloudpickle.register_pickle_by_value(sys.modules[mod])
    try:
        peers = {"single": single_step(args.device, x, y, args.batch)}
        for n in counts:
            if n > 1:
                peers[f"single*{n}"] = single_step(args.device, x, y, n * args.batch)
        dps = {n: DataParallel(init_digits_cnn, loss_fn, [args.device] * n, x=x, y=y, batch_size=args.batch,
                               optimizer=functools.partial(od.SGD, lr=0.05, momentum=0.9), seed=0)
               for n in counts}
        for n, dp in dps.items():
            batches = epoch_batches(np.random.default_rng(0), len(x), n * args.batch)
            box = {"i": 0}

            def dp_step(dp=dp, batches=batches, box=box) -> None:
                dp.step(batches[box["i"] % len(batches)])
                box["i"] += 1
            peers[f"dp-{n}"] = dp_step
        times: dict[str, list[float]] = {k: [] for k in peers}
        for step in peers.values():  # warm-up
            step()
            step()
        for _ in range(args.rounds):
            for name, step in peers.items():
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    step()
                    times[name].append((time.perf_counter() - t0) * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"digits CNN, batch {args.batch} per worker, {args.device}, {os.cpu_count()} cores, "
              f"{args.rounds} rounds x {args.steps} steps (median ms per step)")
        for name, ms in med.items():
            print(f"  {name:<10} {ms:8.1f} ms")
        for n in counts:
            line = f"  dp-{n} / single {med[f'dp-{n}'] / med['single']:.2f}x"
            if n > 1:
                line += f", dp-{n} / single*{n} {med[f'dp-{n}'] / med[f'single*{n}']:.2f}x"
            print(line)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"median_ms": med, "batch": args.batch, "device": args.device}, fh, indent=1)
        for dp in dps.values():
            dp.shutdown()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
