"""Whole-model inference: torchvision models through od.onnx.load (eager and graph) against ONNX
Runtime and PyTorch running the same model, in the same run.

Run: python bench/onnx_models.py [--models resnet18,mobilenet_v2] [--batches 1,32] [--device numpy:0]
                                 [--peers od-eager,od-graph,onnxruntime,torch] [--rounds 2] [--json out.json]

Needs the torch extra (torch 2.13, torchvision 0.28) and onnxruntime: pip install -e '.[bench]'.
Each model is built once (examples/torchvision_export.py: seeded weights, calibrated batch norm,
scaled classifier) and exported to ONNX opset 17 in eval mode, one file per batch size; every peer
then runs that file (PyTorch runs the module it came from) in its own process, peers alternating order round by round (so a
drift in the machine's load hits every peer alike); each row keeps a peer's best median. The table
gives ms per batch and each peer's ratio to the fastest of its row; the od rows also report the max
abs difference of the logits from ONNX Runtime's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, HERE)
PEERS = ("od-eager", "od-graph", "onnxruntime", "torch")
SIZE = 224


def time_ms(fn: Callable[[], Any]) -> float:
    """Median wall time of ``fn`` in ms (bench/perf.py's timer, with a longer budget for whole models)."""
    from perf import time_ms as perf_time_ms
    return perf_time_ms(fn, budget_s=3.0, max_reps=30)


def inputs(batch: int) -> np.ndarray:
    return np.random.default_rng(batch).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)


def runner(peer: str, path: str, name: str, device: str) -> Callable[[np.ndarray], np.ndarray]:
    # one file per batch size: shapes in the file are static, as od.onnx.load resolves shape
    # computations (Shape, Gather ...) at import
    """A function running the model of ``path`` (or torchvision ``name``) on ``peer``: array in, logits out."""
    if peer in ("od-eager", "od-graph"):
        import opdispatch as od
        model = od.onnx.load(path)
        dev = od.Device(device)
        model = model.to(dev)
        call = od.function(model) if peer == "od-graph" else model
        return lambda x: call(od.tensor(x, device=dev)).numpy()
    if peer == "onnxruntime":
        import onnxruntime as ort
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: sess.run(None, {"input": x})[0]
    if peer == "torch":
        import torch
        from torchvision_export import build
        module = build(name, size=SIZE)

        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(x)).numpy()
        return run
    raise SystemExit(f"unknown peer {peer!r}; allowed: {', '.join(PEERS)}")


def worker(peer: str, path: str, name: str, batches: list[int], device: str) -> None:
    """Time ``peer`` on the model at each batch size; one JSON line per batch."""
    for batch in batches:
        try:
            run = runner(peer, path.format(batch=batch), name, device)
        except ImportError as exc:
            print(json.dumps({"peer": peer, "missing": str(exc)}), flush=True)
            return
        x = inputs(batch)
        out = run(x)
        ms = time_ms(lambda run=run, x=x: run(x))
        np.save(f"{path.format(batch=batch)}.{peer}.npy", out)
        print(json.dumps({"peer": peer, "model": name, "batch": batch, "ms": ms}), flush=True)


def run_worker(peer: str, path: str, name: str, batches: list[int], device: str) -> list[dict]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer, "--path", path, "--models", name,
           "--batches", ",".join(map(str, batches)), "--device", device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        lines.append({"peer": peer, "missing": f"worker failed: {tail[0]}"})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--device", default="numpy:0", help="the od device (default numpy:0)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b]
    if args.worker:
        worker(args.worker, args.path, args.models, batches, args.device)
        return
    from torchvision_export import build, export
    peers = [p for p in args.peers.split(",") if p]
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [m for m in args.models.split(",") if m]:
            path = os.path.join(tmp, name + "_b{batch}.onnx")
            module = build(name, size=SIZE)
            for batch in batches:
                export(module, path.format(batch=batch), batch=batch, size=SIZE)
            best: dict[tuple, dict] = {}
            for round_ in range(max(args.rounds, 1)):
                for peer in (peers if round_ % 2 == 0 else peers[::-1]):
                    for r in run_worker(peer, path, name, batches, args.device):
                        if "missing" in r:
                            print(f"peer {peer}: not run ({r['missing']})", file=sys.stderr)
                            continue
                        key = (peer, r["batch"])
                        if key not in best or r["ms"] < best[key]["ms"]:
                            best[key] = r
            for (peer, batch), r in best.items():
                ref = f"{path.format(batch=batch)}.onnxruntime.npy"
                mine = f"{path.format(batch=batch)}.{peer}.npy"
                if peer != "onnxruntime" and os.path.exists(ref) and os.path.exists(mine):
                    r["max_abs_diff_vs_ort"] = float(np.max(np.abs(np.load(mine) - np.load(ref))))
                results.append(r)
    print(f"float32 CPU, {os.cpu_count()} cores, {SIZE}x{SIZE} images, od on {args.device}; median ms per batch "
          f"(best of {args.rounds} rounds, peers in separate processes, alternating order); x = ratio to the "
          f"fastest peer of the row")
    print(table(results, peers))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "peers": peers, "device": args.device}, fh, indent=1)


def table(results: list[dict], peers: list[str]) -> str:
    by = {(r["model"], r["batch"], r["peer"]): r for r in results}
    rows = sorted({(r["model"], r["batch"]) for r in results})
    lines = [f"{'model':<22}" + "".join(f"{p:>22}" for p in peers)]
    for model, batch in rows:
        cells = [by.get((model, batch, p)) for p in peers]
        best = min(c["ms"] for c in cells if c)
        text = []
        for c in cells:
            if c is None:
                text.append(f"{'-':>22}")
            else:
                diff = f" d{c['max_abs_diff_vs_ort']:.0e}" if "max_abs_diff_vs_ort" in c else ""
                text.append(f"{c['ms']:>9.1f} {c['ms'] / best:>5.2f}x{diff:>6}")
        lines.append(f"{model + ' b' + str(batch):<22}" + "".join(f"{t:>22}" for t in text))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
