"""The graph layout pass on and off, paired in one process: od graph time of the same model with
``passes={"layout": True}`` and ``{"layout": False}``, alternating A/B/B/A.

Run: python bench/layout_pass.py [--models resnet18,mobilenet_v2] [--batches 1,16] [--reps 9]

Rows: ``convnet`` (a conv / relu / max-pool / residual stack built here, needs nothing else) and the
torchvision models of ``bench/perf.py`` (exported to ONNX once, into perf.py's model cache; needs torch
and torchvision, ``pip install -e '.[torch]'``, else those rows are skipped with the reason). Each row
prints both medians and the median (25-75% spread) of the per-repetition ratios on / off, the number of
nodes the pass gave a channels-last result, and the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import numpy as np

import opdispatch as od

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import perf  # noqa: E402 - bench/perf.py: its model export and cache


def convnet(batch: int) -> tuple[Callable[..., Any], od.Tensor]:
    """A ResNet-like stack at 56x56 (64 channels): conv+relu, max pool, two residual blocks, a head."""
    rng = np.random.default_rng(0)

    def p(*shape: int) -> od.Tensor:
        return od.tensor((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32))

    stem, blocks, head = p(64, 3, 7, 7), [(p(64, 64, 3, 3), p(64, 64, 3, 3)) for _ in range(2)], p(10, 64)

    def f(x: od.Tensor) -> od.Tensor:
        h = od.max_pool2d(od.relu(od.conv2d(x, stem, stride=2, padding=3)), 3, stride=2, padding=1)
        for w1, w2 in blocks:
            h = od.relu(od.conv2d(od.relu(od.conv2d(h, w1, padding=1)), w2, padding=1) + h)
        return od.matmul(od.mean(h, axis=(2, 3)), od.transpose(head, (1, 0)))

    x = od.tensor(rng.standard_normal((batch, 3, 224, 224)).astype(np.float32))
    return f, x


def model(name: str, batch: int) -> tuple[Callable[..., Any], od.Tensor]:
    out_dir = perf.default_model_dir()
    found, error = perf.export_models([perf._model(name, batch, 224)], out_dir, lambda msg: print(msg, flush=True))
    key = f"{name}_b{batch}"
    if key not in found:
        raise RuntimeError(error or "the export wrote no file")
    m = od.onnx.load(found[key][0]).to(od.Device("numpy:0"))
    x = od.tensor(np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    return m, x


def channels_last_nodes(fn: Callable[..., Any], x: od.Tensor) -> int:
    from opdispatch.graph.function import trace
    from opdispatch.graph.pipeline import lower
    from opdispatch.placement import current_placement

    g = lower(trace(fn, x), [x.device], current_placement())
    return sum(1 for n in g.nodes if n.layout)


def row(label: str, fn: Callable[..., Any], x: od.Tensor, reps: int) -> None:
    on, off = od.function(fn), od.function(fn, passes={"layout": False})
    y_on, y_off = on(x).numpy(), off(x).numpy()
    for _ in range(2):
        on(x), off(x)
    t: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(reps):
        for name in (("on", "off") if r % 2 == 0 else ("off", "on")):
            f = on if name == "on" else off
            start = time.perf_counter()
            f(x)
            t[name].append(time.perf_counter() - start)
    ratios = np.array(t["on"]) / np.array(t["off"])
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    print(f"{label:<18} {np.median(t['on']) * 1e3:9.2f} {np.median(t['off']) * 1e3:9.2f}   {med:5.2f}x "
          f"[{q1:.2f}-{q3:.2f}]   {channels_last_nodes(fn, x):4d}   {float(np.abs(y_on - y_off).max()):.1e}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    print(f"providers: {', '.join(f'{n} ({s.status})' for n, s in od.providers().items()) or 'none'}")
    print(f"{'row':<18} {'on ms':>9} {'off ms':>9}   on/off [25-75%]   channels-last nodes   max |on - off|")
    batches = [int(b) for b in args.batches.split(",") if b]
    for b in batches:
        row(f"convnet_b{b}", *convnet(b), reps=args.reps)
    for name in [m for m in args.models.split(",") if m]:
        for b in batches:
            try:
                fn, x = model(name, b)
            except Exception as exc:  # noqa: BLE001 - torch/torchvision absent or the export failed
                print(f"{name}_b{b:<10} skipped: {exc}")
                continue
            row(f"{name}_b{b}", fn, x, args.reps)


if __name__ == "__main__":
    main()
