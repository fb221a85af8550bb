"""CPU performance: opdispatch's NumPy backend (eager and graph) against PyTorch and ONNX Runtime.

Run: python bench/perf.py [--peers od-eager,od-graph,torch,onnxruntime] [--only conv_c,...] [--json perf.json]

Each peer runs in its own process (so one library's thread pool or allocator does not slow the
next), all in this run, on the same shapes and data (float32, NCHW). A missing peer (PyTorch and
ONNX Runtime are optional: pip install -e '.[bench]') is reported, not fatal. The table gives ms
(median), GFLOP/s and the ratio to the best peer of each row; --json writes every figure.

Workloads (issue 8): conv2d forward on (a) 128x1x28x28 32 5x5 SAME, (b) 128x32x14x14 64 5x5 SAME,
(c) 32x64x56x56 64 3x3 pad 1, (d) 8x3x224x224 64 7x7 stride 2 pad 3; input+weight gradients of
(a) and (c); max_pool2d 2x2/2 on 128x32x28x28 and 32x64x112x112; batch_norm training forward on
32x64x56x56; matmul 128x3136 @ 3136x1024; one training step of examples/cnn.py at batch 128.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ("od-eager", "od-graph", "torch", "onnxruntime")


@dataclass(frozen=True)
class Workload:
    """One benchmarked call: its kind, input shapes and attributes, and its nominal FLOP count."""

    name: str
    kind: str  # conv | conv_bwd | maxpool | bn | matmul | train
    shapes: tuple
    attrs: dict = field(default_factory=dict, hash=False)
    flops: float = 0.0


def _conv_flops(x, w, out_hw) -> float:
    return 2.0 * x[0] * w[0] * out_hw[0] * out_hw[1] * w[1] * w[2] * w[3]


def _conv(name, x, w, stride, pad, kind="conv") -> Workload:
    oh = (x[2] + 2 * pad - w[2]) // stride + 1
    ow = (x[3] + 2 * pad - w[3]) // stride + 1
    mult = 2.0 if kind == "conv_bwd" else 1.0
    return Workload(name, kind, (x, w), {"stride": stride, "pad": pad}, mult * _conv_flops(x, w, (oh, ow)))


def _cnn_flops(batch: int) -> float:
    fwd = _conv_flops((batch, 1), (32, 1, 5, 5), (28, 28)) + _conv_flops((batch, 32), (64, 32, 5, 5), (14, 14)) \
        + 2.0 * batch * 3136 * 1024 + 2.0 * batch * 1024 * 10
    return 3 * fwd  # forward, and backward at about twice the forward


WORKLOADS = [
    _conv("conv_a", (128, 1, 28, 28), (32, 1, 5, 5), 1, 2),
    _conv("conv_b", (128, 32, 14, 14), (64, 32, 5, 5), 1, 2),
    _conv("conv_c", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    _conv("conv_d", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    _conv("conv_a_bwd", (128, 1, 28, 28), (32, 1, 5, 5), 1, 2, "conv_bwd"),
    _conv("conv_c_bwd", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1, "conv_bwd"),
    Workload("maxpool_28", "maxpool", ((128, 32, 28, 28),), {}, 128 * 32 * 14 * 14 * 4.0),
    Workload("maxpool_112", "maxpool", ((32, 64, 112, 112),), {}, 32 * 64 * 56 * 56 * 4.0),
    Workload("bn_train", "bn", ((32, 64, 56, 56),), {}, 32 * 64 * 56 * 56 * 8.0),
    Workload("matmul", "matmul", ((128, 3136), (3136, 1024)), {}, 2.0 * 128 * 3136 * 1024),
    Workload("train_step", "train", ((128, 1, 28, 28),), {}, _cnn_flops(128)),
]


def _data(wl: Workload) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in wl.shapes]
    if wl.kind == "conv_bwd":
        x, w = wl.shapes
        s, p = wl.attrs["stride"], wl.attrs["pad"]
        oh, ow = (x[2] + 2 * p - w[2]) // s + 1, (x[3] + 2 * p - w[3]) // s + 1
        arrays.append(rng.standard_normal((x[0], w[0], oh, ow)).astype(np.float32))
    return arrays


def time_ms(fn: Callable[[], Any], budget_s: float = 1.0, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median wall time of ``fn`` in ms, after one warm-up call, over ``min_reps``..``max_reps`` calls."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (len(times) < max_reps and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ---- peers: each returns a zero-argument callable for a workload, or raises NotImplementedError ----

def od_peer(graph: bool) -> Callable[[Workload], Callable[[], Any]]:
    import opdispatch as od

    if graph and not hasattr(od, "function"):
        raise ImportError("od.function is not available in this opdispatch")
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from cnn import init_params, train_step

    wrap = od.function if graph else (lambda f: f)

    def make(wl: Workload) -> Callable[[], Any]:
        ts = [od.tensor(a) for a in _data(wl)]
        if wl.kind == "conv":
            f = wrap(lambda x, w: od.conv2d(x, w, stride=wl.attrs["stride"], padding=wl.attrs["pad"]))
            return lambda: f(*ts)
        if wl.kind == "conv_bwd":
            conv2d_backward_input = od.op_function("conv2d_backward_input")
            conv2d_backward_weight = od.op_function("conv2d_backward_weight")
            x, w, dy = ts
            kw = dict(stride=wl.attrs["stride"], padding=wl.attrs["pad"])
            f = wrap(lambda x, w, dy: (conv2d_backward_input(dy, w, input_shape=x.shape, **kw),
                                       conv2d_backward_weight(x, dy, weight_shape=w.shape, **kw)))
            return lambda: f(x, w, dy)
        if wl.kind == "maxpool":
            f = wrap(lambda x: od.max_pool2d(x, 2))
            return lambda: f(*ts)
        if wl.kind == "bn":
            c = wl.shapes[0][1]
            rm, rv = od.tensor(np.zeros(c, np.float32)), od.tensor(np.ones(c, np.float32))
            g, b = od.tensor(np.ones(c, np.float32)), od.tensor(np.zeros(c, np.float32))
            f = wrap(lambda x, rm, rv, g, b: od.batch_norm(x, rm, rv, g, b, training=True))
            return lambda: f(ts[0], rm, rv, g, b)
        if wl.kind == "matmul":
            f = wrap(od.matmul)
            return lambda: f(*ts)
        if wl.kind == "train":
            params, state = init_params(np.random.default_rng(1), image_hw=(28, 28))
            opt = od.SGD(params, lr=0.01, momentum=0.9)
            labels = np.random.default_rng(2).integers(0, 10, wl.shapes[0][0])
            if graph:
                return _graph_train_step(od, opt, ts[0], labels)
            return lambda: train_step(opt, state, ts[0], labels)
        raise NotImplementedError(wl.kind)

    return make


def _graph_train_step(od: Any, opt: Any, x: Any, labels: np.ndarray) -> Callable[[], Any]:
    """The training step's forward and backward as one traced graph; the SGD update stays eager."""
    from cnn import loss_fn

    names = sorted(opt.params)

    @od.function
    def grads(x, labels, *params):
        p = dict(zip(names, params))
        with od.GradientTape() as tape:
            tape.watch(list(params))
            loss, _ = loss_fn(p, {}, x, labels)
        return (loss, *tape.gradient(loss, list(params)))

    def step() -> float:
        loss, *gs = grads(x, labels, *[opt.params[n] for n in names])
        opt.step(dict(zip(names, gs)))
        return float(loss.numpy())

    return step


def torch_peer() -> Callable[[Workload], Callable[[], Any]]:
    import torch
    import torch.nn.functional as F

    torch.set_grad_enabled(False)

    def make(wl: Workload) -> Callable[[], Any]:
        ts = [torch.from_numpy(a) for a in _data(wl)]
        if wl.kind == "conv":
            return lambda: F.conv2d(ts[0], ts[1], stride=wl.attrs["stride"], padding=wl.attrs["pad"])
        if wl.kind == "conv_bwd":
            x, w, dy = ts
            s, p = wl.attrs["stride"], wl.attrs["pad"]
            return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [s, s], [p, p], [1, 1], False,
                                                               [0, 0], 1, [True, True, False])
        if wl.kind == "maxpool":
            return lambda: F.max_pool2d(ts[0], 2)
        if wl.kind == "bn":
            c = wl.shapes[0][1]
            rm, rv, g, b = torch.zeros(c), torch.ones(c), torch.ones(c), torch.zeros(c)
            return lambda: F.batch_norm(ts[0], rm.clone(), rv.clone(), g, b, training=True)
        if wl.kind == "matmul":
            return lambda: ts[0] @ ts[1]
        if wl.kind == "train":
            return _torch_train_step(torch, F, ts[0])
        raise NotImplementedError(wl.kind)

    return make


def _torch_train_step(torch: Any, F: Any, x: Any, y: Optional[Any] = None) -> Callable[[], Any]:
    """The CNN of examples/cnn.py (same initial parameters) trained with torch.optim.SGD(momentum=0.9)."""
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from cnn import init_params

    params, _ = init_params(np.random.default_rng(1), image_hw=(28, 28))
    p = {k: torch.tensor(v.numpy(), requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(list(p.values()), lr=0.01, momentum=0.9)
    if y is None:
        y = torch.from_numpy(np.random.default_rng(2).integers(0, 10, x.shape[0]))

    def step() -> float:
        with torch.enable_grad():
            opt.zero_grad(set_to_none=True)
            h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.w"], p["conv1.b"], padding=2)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.w"], p["conv2.b"], padding=2)), 2)
            h = F.relu(h.flatten(1) @ p["fc1.w"] + p["fc1.b"])
            loss = F.cross_entropy(h @ p["fc2.w"] + p["fc2.b"], y)
            loss.backward()
            opt.step()
        return loss.item()

    return step


def onnxruntime_peer() -> Callable[[Workload], Callable[[], Any]]:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    def session(node: Any, inputs: list, out_shape_rank: int) -> Any:
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in inputs]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        graph = helper.make_graph([node], "bench", ins, [out])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def make(wl: Workload) -> Callable[[], Any]:
        arrays = _data(wl)
        if wl.kind == "conv":
            s, p = wl.attrs["stride"], wl.attrs["pad"]
            node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[s, s], pads=[p, p, p, p])
            feeds = {"x": arrays[0], "w": arrays[1]}
        elif wl.kind == "maxpool":
            node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
            feeds = {"x": arrays[0]}
        elif wl.kind == "matmul":
            node = helper.make_node("MatMul", ["a", "b"], ["y"])
            feeds = {"a": arrays[0], "b": arrays[1]}
        else:
            raise NotImplementedError(f"{wl.kind}: not an inference op in ONNX Runtime")
        sess = session(node, list(feeds.items()), 4)
        return lambda: sess.run(None, feeds)

    return make


def worker(peer: str, only: Optional[set]) -> None:
    """Run every workload on ``peer`` in this process; print one JSON line per workload."""
    try:
        make = {"od-eager": lambda: od_peer(False), "od-graph": lambda: od_peer(True), "torch": torch_peer,
                "onnxruntime": onnxruntime_peer}[peer]()
    except ImportError as exc:
        print(json.dumps({"peer": peer, "missing": str(exc)}), flush=True)
        return
    for wl in WORKLOADS:
        if only and wl.name not in only:
            continue
        try:
            fn = make(wl)
        except NotImplementedError as exc:
            print(json.dumps({"peer": peer, "workload": wl.name, "skipped": str(exc)}), flush=True)
            continue
        ms = time_ms(fn)
        print(json.dumps({"peer": peer, "workload": wl.name, "ms": ms, "gflops": wl.flops / ms / 1e6}), flush=True)


def run_worker(peer: str, only: Optional[str]) -> list[dict]:
    """One worker process for ``peer``: its JSON lines (a failed worker gives one 'missing' line)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer] + (["--only", only] if only else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        lines.append({"peer": peer, "missing": f"worker failed: {proc.stderr.strip().splitlines()[-1:]}"})
    return lines


def table(results: list[dict], peers: list[str]) -> str:
    """Rows = workloads, columns = peers: ms, GFLOP/s and the ratio to the row's fastest peer."""
    by = {(r["workload"], r["peer"]): r for r in results if "ms" in r}
    lines = [f"{'workload':<13}" + "".join(f"{p:>28}" for p in peers),
             f"{'':<13}" + "".join(f"{'ms  GFLOP/s  x best':>28}" for _ in peers)]
    for wl in WORKLOADS:
        row = [by.get((wl.name, p)) for p in peers]
        if not any(row):
            continue
        best = min(r["ms"] for r in row if r)
        cells = [f"{r['ms']:>9.2f} {r['gflops']:>8.1f} {r['ms'] / best:>7.2f}x" if r else f"{'-':>26}" for r in row]
        lines.append(f"{wl.name:<13}" + "".join(f"{c:>28}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, from {', '.join(PEERS)}")
    parser.add_argument("--only", help="comma-separated workload names (default: all)")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every peer this many times, in alternating order, keeping each row's best median "
                             "(the machine's load drifts; default 2)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    if args.worker:
        worker(args.worker, only)
        return
    peers = [p for p in args.peers.split(",") if p]
    best: dict[tuple, dict] = {}
    missing: dict[str, str] = {}
    for round_ in range(max(args.rounds, 1)):
        for peer in (peers if round_ % 2 == 0 else peers[::-1]):
            if peer in missing:
                continue
            for r in run_worker(peer, args.only):
                if "missing" in r:
                    missing[peer] = r["missing"]
                    print(f"peer {peer}: not run ({r['missing']})", file=sys.stderr)
                    continue
                key = (r["peer"], r["workload"])
                if key not in best or r.get("ms", float("inf")) < best[key].get("ms", float("inf")):
                    best[key] = r
    results = list(best.values())
    ran = [p for p in peers if any(r.get("peer") == p and "ms" in r for r in results)]
    print(f"float32 CPU, {os.cpu_count()} cores; median ms (best of {args.rounds} rounds); ratio to the fastest "
          f"peer of each row")
    print(table(results, ran))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "peers": ran}, fh, indent=1)


if __name__ == "__main__":
    main()
