"""CPU performance: opdispatch on numpy:0 (eager and graph) against PyTorch and ONNX Runtime, paired.

Run: python bench/perf.py [--quick] [--rows conv_c,resnet18_b1,...] [--peers od-graph,torch,...]
                          [--rounds 15] [--mode lockstep|inprocess|alone] [--json perf.json]

How it measures. Every peer lives in a long-lived worker process of its own, and the peers of a row
are driven in lockstep: round by round, each peer runs one repetition in turn (the order reversed
every other round) while the others wait on their pipes, and the worker times that repetition
itself. A drift in the machine's load therefore hits every peer of a round alike, and each round
gives one paired ratio per pair of peers; a row reports the median of those ratios and their spread
(quartiles and min-max), never a ratio of medians taken minutes apart. After each repetition the
next one waits until no thread of the worker that ran is runnable ("settle", `wait_idle`): PyTorch's
OpenMP threads, OpenBLAS's and ONNX Runtime's keep spinning for some ms after a call (2-16 ms median
here, OpenBLAS up to 100 ms; JSON ``settle_ms``), and on 2 cores a spinning pool slows whichever
runtime runs next, in the same process or another (bench/interleave_check.py compares the schedules).
A repetition is the median of back-to-back calls that fill `--min-rep-ms` (10 ms; one call for the rows
slower than that): a single call after the pools have gone idle measures their wake-up, which on this VM
costs GNU OpenMP's runtimes (od, PyTorch) about 0.8 ms and, one call in three, 10 ms (conv_a: od 0.54
ms back to back, 1.3 ms or 10-12 ms as single calls; PyTorch alike; ONNX Runtime 1.07 ms either way).
Every worker runs with glibc's large-allocation threshold raised (`HEAP_MALLOC`: arrays up to 1 GiB
come from the heap and freed memory stays there), the same for every peer: on this VM an array freed
back to the OS and faulted in again costs more than the work, order-dependently (MobileNetV2 b16: od
graph 185 ms and PyTorch 250 ms in one peer order, 46 and 100 ms in the other, with glibc's default);
``--default-malloc`` runs with glibc's defaults. ``--mode inprocess`` alternates in one process instead;
``--mode alone`` runs each peer's repetitions back to back (unpaired). ``--threads 1`` runs every peer
on one thread: on a loaded machine a 2-thread pool whose threads are preempted in turn stalls at each
barrier (OpenBLAS most: 10-100x slower at load 8), which a single thread does not.

Peers: ``od-eager`` and ``od-graph`` (od.function) on numpy:0 with every installed kernel provider;
``od-graph-noprov``, the same with all providers disabled (OPDISPATCH_DISABLE_PROVIDERS), added
whenever a provider (the oneDNN one, ``backends/onednn``) is loaded, so the table shows its gain;
``torch`` (PyTorch eager) and ``onnxruntime`` (one-node models; whole models for the model rows). A
peer that is not installed, or has no counterpart for a row, is reported, not fatal.

Rows (issue 8, 15): conv2d forward on (a) 128x1x28x28 32 5x5 SAME, (b) 128x32x14x14 64 5x5 SAME,
(c) 32x64x56x56 64 3x3 pad 1, (d) 8x3x224x224 64 7x7 stride 2 pad 3; input+weight gradients of (a)
and (c); max_pool2d 2x2/2 on 128x32x28x28 and 32x64x112x112; batch_norm training forward on
32x64x56x56; matmul 128x3136 @ 3136x1024; one training step of examples/cnn.py at batch 128; and
ResNet-18 and MobileNetV2 inference (torchvision, exported once to ONNX by examples/
torchvision_export.py with calibrated batch norm; od.onnx.load runs the file, ONNX Runtime the same
file, PyTorch the module it came from) at batch 1 and 16.

Figures: per peer the median ms and GFLOP/s (nominal FLOPs: 2 per multiply-add; GB/s of the minimal
traffic for the memory-bound rows) with its share of the machine's peak, measured at the start and the end
as the best float32 2048^3 matmul of any peer's library (the guide's figure: about 475 GFLOP/s); per
row the paired ratios od/peer (median [p25-p75]) and against the best peer (the faster of PyTorch and
ONNX Runtime by median). The first output of every peer is compared with the reference peer's
(max abs difference over max abs value), so a fast wrong kernel shows. --json writes every figure,
every repetition's ms included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "examples")
OD_PEERS = ("od-eager", "od-graph", "od-graph-noprov")
OTHER_PEERS = ("torch", "onnxruntime")
PEERS = OD_PEERS + OTHER_PEERS
PEER_TITLES = {"od-eager": "od eager", "od-graph": "od graph", "od-graph-noprov": "od graph, no providers",
               "torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
NOMINAL_PEAK_GFLOPS = 475.0
"""The developers' guide's float32 FMA peak of this 2-core AVX-512 machine (reported beside the measured one)."""
MODES = ("lockstep", "inprocess", "alone")
THREADS_ENV = "PERF_THREADS"


def thread_env(threads: int) -> dict:
    """The workers' environment for ``threads`` threads per peer (0: every library's default, all cores)."""
    if not threads:
        return {}
    n = str(threads)
    return {THREADS_ENV: n, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
HEAP_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}
"""The workers' glibc malloc settings (unless --default-malloc): allocations up to 1 GiB from the heap, and
up to 4 GiB of freed heap kept, instead of mmap/munmap for every array over 32 MiB (each call's tensors
then page-fault in again)."""
NO_SPIN_ENV = "PERF_NO_SPIN"
NO_SPIN = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4", NO_SPIN_ENV: "1"}
"""The workers' environment with --no-spin: idle threads sleep at once instead of spinning (GNU OpenMP,
used by PyTorch; OpenBLAS, used by NumPy: 2^4 cycles instead of 2^28; ONNX Runtime's intra-op pool
through a session option), so a peer's idle pool does not compete with the next peer's work."""
MEMORY_BOUND = ("maxpool", "bn")
DIFF_WARN = 1e-3
"""A peer's first output differing from the reference's by more than this (relative) is flagged."""


# ---- workloads ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One benchmarked call: its kind, input shapes and attributes, and its nominal FLOP count
    (and, for the memory-bound kinds, the bytes it must move at least)."""

    name: str
    kind: str  # conv | conv_bwd | maxpool | bn | matmul | train | model
    shapes: tuple
    attrs: dict = field(default_factory=dict, hash=False)
    flops: float = 0.0
    bytes: float = 0.0

    def describe(self) -> str:
        """A short human description of the shapes (the table's row label)."""
        if self.kind == "model":
            return f"{self.attrs['model']} b{self.shapes[0][0]} {self.shapes[0][2]}²"
        if self.kind in ("conv", "conv_bwd"):
            x, w = self.shapes
            s = f" s{self.attrs['stride']}" if self.attrs["stride"] != 1 else ""
            return f"{x[0]}x{x[1]}x{x[2]}² {w[2]}x{w[3]}x{w[0]}{s}" + (" bwd" if self.kind == "conv_bwd" else "")
        if self.kind == "matmul":
            (m, k), (_, n) = self.shapes
            return f"{m}x{k} @ {k}x{n}"
        if self.kind == "train":
            return f"CNN train step b{self.shapes[0][0]}"
        return "x".join(map(str, self.shapes[0]))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict) -> "Workload":
        return Workload(d["name"], d["kind"], tuple(tuple(s) for s in d["shapes"]), dict(d["attrs"]),
                        d["flops"], d["bytes"])


def _conv_flops(x: Sequence[int], w: Sequence[int], out_hw: Sequence[int]) -> float:
    return 2.0 * x[0] * w[0] * out_hw[0] * out_hw[1] * w[1] * w[2] * w[3]


def _out_hw(x: Sequence[int], w: Sequence[int], stride: int, pad: int) -> tuple[int, int]:
    return (x[2] + 2 * pad - w[2]) // stride + 1, (x[3] + 2 * pad - w[3]) // stride + 1


def _conv(name: str, x: tuple, w: tuple, stride: int, pad: int, kind: str = "conv") -> Workload:
    mult = 2.0 if kind == "conv_bwd" else 1.0  # the input and the weight gradient each cost a forward
    return Workload(name, kind, (x, w), {"stride": stride, "pad": pad},
                    mult * _conv_flops(x, w, _out_hw(x, w, stride, pad)))


def _maxpool(name: str, x: tuple) -> Workload:
    out = x[0] * x[1] * (x[2] // 2) * (x[3] // 2)
    return Workload(name, "maxpool", (x,), {}, 4.0 * out, 4.0 * (math.prod(x) + out))


def _bn(name: str, x: tuple) -> Workload:
    # training: one pass for the batch statistics, one to normalise: x read twice, y written once
    return Workload(name, "bn", (x,), {}, 8.0 * math.prod(x), 3 * 4.0 * math.prod(x))


def _cnn_flops(batch: int) -> float:
    fwd = _conv_flops((batch, 1), (32, 1, 5, 5), (28, 28)) + _conv_flops((batch, 32), (64, 32, 5, 5), (14, 14)) \
        + 2.0 * batch * 3136 * 1024 + 2.0 * batch * 1024 * 10
    return 3 * fwd  # forward, and backward at about twice the forward


def _model(model: str, batch: int, size: int) -> Workload:
    # the FLOPs are counted when the model is exported (export_models): 0 until then
    return Workload(f"{model}_b{batch}", "model", ((batch, 3, size, size),), {"model": model, "size": size})


MODELS = ("resnet18", "mobilenet_v2")


def workloads(tiny: bool = False, model_batches: Sequence[int] = (1, 16)) -> list[Workload]:
    """Every row, at the issue's shapes or (``tiny``, for the tests) at small ones of the same kinds."""
    if tiny:
        return [
            _conv("conv_a", (2, 1, 12, 12), (4, 1, 5, 5), 1, 2),
            _conv("conv_b", (2, 4, 8, 8), (6, 4, 5, 5), 1, 2),
            _conv("conv_c", (2, 4, 10, 10), (4, 4, 3, 3), 1, 1),
            _conv("conv_d", (1, 3, 16, 16), (4, 3, 7, 7), 2, 3),
            _conv("conv_a_bwd", (2, 1, 12, 12), (4, 1, 5, 5), 1, 2, "conv_bwd"),
            _conv("conv_c_bwd", (2, 4, 10, 10), (4, 4, 3, 3), 1, 1, "conv_bwd"),
            _maxpool("maxpool_28", (2, 4, 8, 8)),
            _maxpool("maxpool_112", (2, 4, 16, 16)),
            _bn("bn_train", (2, 4, 6, 6)),
            Workload("matmul", "matmul", ((8, 64), (64, 32)), {}, 2.0 * 8 * 64 * 32),
            Workload("train_step", "train", ((4, 1, 28, 28),), {}, _cnn_flops(4)),
        ] + [_model(m, b, 32) for m in MODELS for b in model_batches]
    return [
        _conv("conv_a", (128, 1, 28, 28), (32, 1, 5, 5), 1, 2),
        _conv("conv_b", (128, 32, 14, 14), (64, 32, 5, 5), 1, 2),
        _conv("conv_c", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1),
        _conv("conv_d", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
        _conv("conv_a_bwd", (128, 1, 28, 28), (32, 1, 5, 5), 1, 2, "conv_bwd"),
        _conv("conv_c_bwd", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1, "conv_bwd"),
        _maxpool("maxpool_28", (128, 32, 28, 28)),
        _maxpool("maxpool_112", (32, 64, 112, 112)),
        _bn("bn_train", (32, 64, 56, 56)),
        Workload("matmul", "matmul", ((128, 3136), (3136, 1024)), {}, 2.0 * 128 * 3136 * 1024),
        Workload("train_step", "train", ((128, 1, 28, 28),), {}, _cnn_flops(128)),
    ] + [_model(m, b, 224) for m in MODELS for b in model_batches]


WORKLOADS = workloads()


def _data(wl: Workload) -> list[np.ndarray]:
    """The row's inputs, the same seeded arrays in every peer."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in wl.shapes]
    if wl.kind == "conv_bwd":
        x, w = wl.shapes
        oh, ow = _out_hw(x, w, wl.attrs["stride"], wl.attrs["pad"])
        arrays.append(rng.standard_normal((x[0], w[0], oh, ow)).astype(np.float32))
    return arrays


def time_ms(fn: Callable[[], Any], budget_s: float = 1.0, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median wall time of ``fn`` in ms, after one warm-up call, over ``min_reps``..``max_reps`` calls
    (the unpaired timer bench/onnx_models.py uses)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (len(times) < max_reps and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


# ---- paired statistics ---------------------------------------------------------------------------------

def spread(values: Sequence[float]) -> dict:
    """Median, quartiles (linear interpolation), min, max and count of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    p25, med, p75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "p25": float(p25), "p75": float(p75), "min": float(v.min()),
            "max": float(v.max()), "n": int(v.size)}


def paired_ratios(a_ms: Sequence[float], b_ms: Sequence[float]) -> dict:
    """The spread (see `spread`) of the per-round ratios a/b of two peers timed in the same rounds."""
    if len(a_ms) != len(b_ms) or not a_ms:
        raise ValueError(f"paired_ratios: needs two equally long, non-empty series; got {len(a_ms)} and {len(b_ms)}")
    return spread([a / b for a, b in zip(a_ms, b_ms)])


def row_figures(wl: Workload, times: dict[str, list[float]], peak_gflops: Optional[float]) -> dict:
    """Per peer the median ms, GFLOP/s (GB/s) and share of the peak; the paired ratios of every od peer
    against every other peer, the best other peer (lowest median) and the ratios against it, and the
    provider gain (od-graph-noprov / od-graph)."""
    peers: dict[str, dict] = {}
    for p, ms in times.items():
        med = float(np.median(ms))
        fig: dict[str, Any] = {"ms": list(ms), "median_ms": med, "ms_spread": spread(ms)}
        if wl.flops:
            fig["gflops"] = wl.flops / med / 1e6
            if peak_gflops:
                fig["peak_fraction"] = fig["gflops"] / peak_gflops
        if wl.bytes:
            fig["gbytes_per_s"] = wl.bytes / med / 1e6
        peers[p] = fig
    ratios = {f"{a}/{b}": paired_ratios(times[a], times[b])
              for a in OD_PEERS if a in times for b in OTHER_PEERS if b in times}
    others = [p for p in OTHER_PEERS if p in times]
    best = min(others, key=lambda p: peers[p]["median_ms"]) if others else None
    vs_best = {a: ratios[f"{a}/{best}"] for a in OD_PEERS if a in times} if best else {}
    gain = paired_ratios(times["od-graph-noprov"], times["od-graph"]) \
        if "od-graph-noprov" in times and "od-graph" in times else None
    return {"peers": peers, "ratios": ratios, "best_peer": best, "vs_best": vs_best, "provider_gain": gain}


# ---- peers (run inside a worker): each makes a zero-argument callable for a workload ----------------------

class Unsupported(Exception):
    """The peer has no counterpart for this workload (reported as skipped)."""


def _first_array(out: Any) -> np.ndarray:
    """The first array of a peer's output (a tensor, a tuple or list of them, or a float), as float64."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "detach"):
        out = out.detach()
    if hasattr(out, "numpy"):
        out = out.numpy()
    return np.asarray(out, dtype=np.float64)


class OdPeer:
    """opdispatch on numpy:0, eager or traced (od.function), with whatever providers are enabled."""

    def __init__(self, graph: bool) -> None:
        import opdispatch as od

        if graph and not hasattr(od, "function"):
            raise ImportError("od.function is not available in this opdispatch")
        if EXAMPLES not in sys.path:
            sys.path.insert(0, EXAMPLES)
        self.od = od
        self.graph = graph
        self.wrap: Callable = od.function if graph else (lambda f: f)

    def info(self) -> dict:
        od = self.od
        provs = {name: {"status": s.status, "enabled": s.enabled, "targets": list(s.targets), "version": s.version,
                        "priority": s.priority, "reason": s.reason, "ops": len(s.ops)}
                 for name, s in od.providers().items()}
        return {"numpy": np.__version__, "providers": provs,
                "disabled_env": os.environ.get("OPDISPATCH_DISABLE_PROVIDERS", "")}

    def peak(self, n: int) -> tuple[Callable[[], Any], str]:
        a, b = (np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in (0, 1))
        return (lambda: a @ b), "numpy.matmul"

    def make(self, wl: Workload, model_path: Optional[str]) -> Callable[[], Any]:
        od, wrap = self.od, self.wrap
        if wl.kind == "model":
            model = od.onnx.load(model_path).to(od.Device("numpy:0"))
            call = wrap(model)
            x = od.tensor(_data(wl)[0])
            return lambda: call(x)
        ts = [od.tensor(a) for a in _data(wl)]
        if wl.kind == "conv":
            f = wrap(lambda x, w: od.conv2d(x, w, stride=wl.attrs["stride"], padding=wl.attrs["pad"]))
            return lambda: f(*ts)
        if wl.kind == "conv_bwd":
            conv2d_backward_input = od.op_function("conv2d_backward_input")
            conv2d_backward_weight = od.op_function("conv2d_backward_weight")
            x, w, dy = ts
            kw = {"stride": wl.attrs["stride"], "padding": wl.attrs["pad"]}
            g = wrap(lambda x, w, dy: (conv2d_backward_input(dy, w, input_shape=x.shape, **kw),
                                       conv2d_backward_weight(x, dy, weight_shape=w.shape, **kw)))
            return lambda: g(x, w, dy)
        if wl.kind == "maxpool":
            f = wrap(lambda x: od.max_pool2d(x, 2))
            return lambda: f(*ts)
        if wl.kind == "bn":
            c = wl.shapes[0][1]
            rm, rv = od.tensor(np.zeros(c, np.float32)), od.tensor(np.ones(c, np.float32))
            gamma, beta = od.tensor(np.ones(c, np.float32)), od.tensor(np.zeros(c, np.float32))
            f = wrap(lambda x, rm, rv, g, b: od.batch_norm(x, rm, rv, g, b, training=True))
            return lambda: f(ts[0], rm, rv, gamma, beta)
        if wl.kind == "matmul":
            f = wrap(od.matmul)
            return lambda: f(*ts)
        if wl.kind == "train":
            from cnn import init_params, train_step
            params, state = init_params(np.random.default_rng(1), image_hw=(28, 28))
            opt = od.SGD(params, lr=0.01, momentum=0.9)
            labels = np.random.default_rng(2).integers(0, 10, wl.shapes[0][0])
            if self.graph:
                return _graph_train_step(od, opt, ts[0], labels)
            return lambda: train_step(opt, state, ts[0], labels)[0]
        raise Unsupported(wl.kind)


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


class TorchPeer:
    """PyTorch eager on the CPU (no autograd except in the training step)."""

    def __init__(self) -> None:
        import torch
        import torch.nn.functional as F

        torch.set_grad_enabled(False)
        if os.environ.get(THREADS_ENV):
            torch.set_num_threads(int(os.environ[THREADS_ENV]))
        self.torch, self.F = torch, F

    def info(self) -> dict:
        torch = self.torch
        return {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "mkldnn": bool(torch.backends.mkldnn.is_available())}

    def peak(self, n: int) -> tuple[Callable[[], Any], str]:
        a, b = (self.torch.from_numpy(np.random.default_rng(i).standard_normal((n, n)).astype(np.float32))
                for i in (0, 1))
        return (lambda: a @ b), "torch.matmul"

    def make(self, wl: Workload, model_path: Optional[str]) -> Callable[[], Any]:
        torch, F = self.torch, self.F
        if wl.kind == "model":
            if EXAMPLES not in sys.path:
                sys.path.insert(0, EXAMPLES)
            from torchvision_export import build
            module = build(wl.attrs["model"], size=wl.attrs["size"])
            x = torch.from_numpy(_data(wl)[0])
            return lambda: module(x)
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
        raise Unsupported(wl.kind)


def _torch_train_step(torch: Any, F: Any, x: Any, y: Optional[Any] = None) -> Callable[[], Any]:
    """The CNN of examples/cnn.py (same initial parameters) trained with torch.optim.SGD(momentum=0.9)."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
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


class OrtPeer:
    """ONNX Runtime's CPU execution provider: a one-node model per op row, the exported file per model row."""

    def __init__(self) -> None:
        import onnxruntime as ort

        self.ort = ort
        self.opts = ort.SessionOptions()
        self.opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if os.environ.get(NO_SPIN_ENV):
            self.opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if os.environ.get(THREADS_ENV):
            self.opts.intra_op_num_threads = int(os.environ[THREADS_ENV])

    def info(self) -> dict:
        return {"onnxruntime": self.ort.__version__}

    def _session(self, model: Any) -> Any:
        return self.ort.InferenceSession(model, self.opts, providers=["CPUExecutionProvider"])

    def _one_node(self, node: Any, feeds: dict) -> Any:
        from onnx import TensorProto, helper

        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in feeds.items()]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        model = helper.make_model(helper.make_graph([node], "bench", ins, [out]),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return self._session(model.SerializeToString())

    def peak(self, n: int) -> tuple[Callable[[], Any], str]:
        from onnx import helper

        feeds = {f"x{i}": np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in (0, 1)}
        sess = self._one_node(helper.make_node("MatMul", ["x0", "x1"], ["y"]), feeds)
        return (lambda: sess.run(None, feeds)), "onnxruntime MatMul"

    def make(self, wl: Workload, model_path: Optional[str]) -> Callable[[], Any]:
        from onnx import helper

        arrays = _data(wl)
        if wl.kind == "model":
            sess = self._session(model_path)
            feeds = {"input": arrays[0]}
            return lambda: sess.run(None, feeds)
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
            raise Unsupported(f"{wl.kind}: not an inference op in ONNX Runtime")
        sess = self._one_node(node, feeds)
        return lambda: sess.run(None, feeds)


def make_peer(peer: str) -> Any:
    """The peer object of name ``peer`` (ImportError when its library is absent)."""
    makers: dict[str, Callable[[], Any]] = {"od-eager": lambda: OdPeer(False), "od-graph": lambda: OdPeer(True),
                                            "od-graph-noprov": lambda: OdPeer(True), "torch": TorchPeer,
                                            "onnxruntime": OrtPeer}
    if peer not in makers:
        raise ValueError(f"unknown peer {peer!r}; allowed: {', '.join(PEERS)}")
    return makers[peer]()


# ---- the worker: a command loop on stdin, one JSON reply per line on the protocol pipe --------------------

def worker_main() -> None:
    """Serve the coordinator's commands (one JSON object a line on stdin) until 'quit' or EOF.

    The replies go to the process's original stdout; fd 1 is pointed at stderr first, so whatever a
    library prints (ONEDNN_VERBOSE=1 does, on stdout) cannot corrupt the protocol."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    peers: dict[str, Any] = {}
    calls: dict[str, Callable[[], Any]] = {}
    for line in sys.stdin:
        msg = json.loads(line)
        cmd, peer = msg["cmd"], msg.get("peer")
        if cmd == "quit":
            break
        try:
            if cmd == "hello":
                try:
                    peers[peer] = make_peer(peer)
                except ImportError as exc:
                    reply: dict = {"missing": f"{type(exc).__name__}: {exc}"}
                else:
                    reply = {"info": peers[peer].info(), "pid": os.getpid()}
            elif cmd == "peak":
                fn, library = peers[peer].peak(msg["n"])
                fn()
                reply = {"ms": [_time_once(fn) for _ in range(msg["reps"])], "library": library}
            elif cmd == "prepare":
                calls.pop(peer, None)
                wl = Workload.from_json(msg["workload"])
                try:
                    fn = peers[peer].make(wl, msg.get("model_path"))
                except Unsupported as exc:
                    reply = {"skipped": str(exc)}
                else:
                    out = fn()  # the first call (a graph's trace), its output kept for the comparison
                    if msg.get("save"):
                        np.save(msg["save"], _first_array(out))
                    for _ in range(max(msg.get("warmup", 1) - 1, 0)):
                        fn()
                    calls[peer] = fn
                    reply = {"ok": True}
            elif cmd == "rep":
                reply = {"ms": [_repetition(calls[peer], msg.get("min_ms", 0.0)) for _ in range(msg.get("n", 1))]}
            elif cmd == "release":
                calls.pop(peer, None)
                reply = {"ok": True}
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except Exception as exc:  # noqa: BLE001 - any failure of a peer is reported, the worker goes on
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")


def _time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


MAX_CALLS_PER_REP = 50


def _repetition(fn: Callable[[], Any], min_ms: float) -> float:
    """One repetition's ms per call: ``fn`` called back to back until the calls add up to ``min_ms`` (at
    least one, at most `MAX_CALLS_PER_REP`), the median of their times (the first call, which wakes the
    idle thread pools, counts once among them)."""
    times = [_time_once(fn)]
    while sum(times) < min_ms and len(times) < MAX_CALLS_PER_REP:
        times.append(_time_once(fn))
    return float(np.median(times))


def runnable_threads(pid: int) -> Optional[int]:
    """How many threads of process ``pid`` are running or waiting for a core (state R in Linux's
    /proc/PID/task/TID/stat: a spinning pool is, a sleeping one is not, whether or not the machine's
    load lets it run just now), or None where that cannot be read."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    count = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # a thread that just ended
        count += state == "R"
    return count


def wait_idle(pid: int, max_ms: float, poll_ms: float = 1.0, quiet_polls: int = 2) -> Optional[float]:
    """Wait until no thread of process ``pid`` is runnable in ``quiet_polls`` polls in a row (its idle
    thread pools have gone to sleep), at most ``max_ms``; the ms waited, or None where the threads'
    states cannot be read."""
    start = time.perf_counter()
    quiet = 0
    while True:
        running = runnable_threads(pid)
        if running is None:
            return None
        quiet = quiet + 1 if running == 0 else 0
        waited = (time.perf_counter() - start) * 1e3
        if quiet >= quiet_polls or waited >= max_ms:
            return waited
        time.sleep(poll_ms / 1e3)


class WorkerDied(Exception):
    """A worker process exited or stopped answering."""


class Worker:
    """One worker process (serving one or more peers) and its pipes."""

    def __init__(self, env: Optional[dict], log_dir: str, label: str, show_output: bool) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=f"{label}.", suffix=".log", dir=log_dir)
        os.close(fd)
        self.log = None if show_output else open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=env, text=True, bufsize=1)

    def ask(self, msg: dict, timeout_s: float) -> dict:
        """Send one command and wait (at most ``timeout_s``) for its reply."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"worker gone ({exc}){self._tail()}") from exc
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            self.proc.kill()
            raise WorkerDied(f"no answer to {msg['cmd']} within {timeout_s:.0f} s; killed")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise WorkerDied(f"worker exited with status {self.proc.returncode}{self._tail()}")
        return json.loads(line)

    def _tail(self) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        with open(self.log_path) as fh:
            lines = [ln.strip() for ln in fh.read().splitlines() if ln.strip()]
        return f": {lines[-1]}" if lines else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()


# ---- model export (a subprocess with torch and torchvision) ---------------------------------------------

def export_main(specs: list[str], out_dir: str) -> None:
    """Export each ``model:batch:size`` of ``specs`` to ``out_dir``/name_bB_sS.onnx with a .json sidecar
    holding its nominal FLOPs (conv and linear layers, counted with forward hooks)."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import torch
    from torchvision_export import build, export

    built: dict[tuple, Any] = {}
    for spec in specs:
        name, batch, size = spec.split(":")
        key = (name, int(size))
        if key not in built:
            built[key] = build(name, size=int(size))
        module = built[key]
        path = model_file(out_dir, name, int(batch), int(size))
        export(module, path, batch=int(batch), size=int(size))
        flops = [0.0]

        def hook(mod: Any, _inputs: Any, out: Any, flops: list = flops) -> None:
            if isinstance(mod, torch.nn.Conv2d):
                flops[0] += 2.0 * out.numel() * mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            elif isinstance(mod, torch.nn.Linear):
                flops[0] += 2.0 * out.numel() * mod.in_features

        handles = [m.register_forward_hook(hook) for m in module.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        with torch.no_grad():
            module(torch.zeros(int(batch), 3, int(size), int(size)))
        for h in handles:
            h.remove()
        with open(path + ".json", "w") as fh:
            json.dump({"flops": flops[0]}, fh)


def model_file(out_dir: str, name: str, batch: int, size: int) -> str:
    return os.path.join(out_dir, f"{name}_b{batch}_s{size}.onnx")


def default_model_dir() -> str:
    """Where exported models are kept between runs: a cache folder named after a hash of what decides
    the files' contents (examples/torchvision_export.py, `export_main`, the torch and torchvision versions)."""
    import hashlib
    import inspect
    from importlib import metadata

    digest = hashlib.sha256(inspect.getsource(export_main).encode())
    with open(os.path.join(EXAMPLES, "torchvision_export.py"), "rb") as fh:
        digest.update(fh.read())
    for dist in ("torch", "torchvision"):
        try:
            digest.update(metadata.version(dist).encode())
        except metadata.PackageNotFoundError:
            pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "opdispatch-bench", digest.hexdigest()[:16])


def export_models(rows: list[Workload], out_dir: str, log: Callable[[str], None]) -> tuple[dict, Optional[str]]:
    """Export the model rows' files (those not already in ``out_dir``); returns row name -> (path, FLOPs)
    and, when the export failed, why."""
    todo = [wl for wl in rows if wl.kind == "model"]
    missing = [wl for wl in todo if not os.path.exists(model_file(out_dir, wl.attrs["model"], wl.shapes[0][0],
                                                                  wl.attrs["size"]) + ".json")]
    error = None
    if missing:
        log(f"exporting {', '.join(wl.name for wl in missing)} to ONNX ...")
        specs = [f"{wl.attrs['model']}:{wl.shapes[0][0]}:{wl.attrs['size']}" for wl in missing]
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--export", ",".join(specs),
                               "--model-dir", out_dir], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            error = f"the model export failed (needs torch and torchvision: pip install -e '.[torch]'): {tail[0]}"
    found = {}
    for wl in todo:
        path = model_file(out_dir, wl.attrs["model"], wl.shapes[0][0], wl.attrs["size"])
        if os.path.exists(path + ".json"):
            with open(path + ".json") as fh:
                found[wl.name] = (path, json.load(fh)["flops"])
    return found, error


# ---- the coordinator ---------------------------------------------------------------------------------------

@dataclass
class Settings:
    """How many rounds a row gets and how long it may take."""

    rounds: int = 15
    min_rounds: int = 5
    row_budget_s: float = 30.0
    warmup: int = 2
    gap_ms: float = 0.0
    min_rep_ms: float = 10.0
    no_spin: bool = False
    heap_malloc: bool = True
    settle: bool = True
    threads: int = 0
    settle_max_ms: float = 300.0
    peak_n: int = 2048
    peak_reps: int = 5
    timeout_s: float = 600.0


class Bench:
    """The worker processes of the selected peers, and the rows run on them."""

    def __init__(self, peers: list[str], mode: str, settings: Settings, work_dir: str, show_output: bool,
                 log: Callable[[str], None]) -> None:
        self.mode, self.settings, self.work_dir, self.show_output, self.log = mode, settings, work_dir, \
            show_output, log
        self.procs: dict[str, Worker] = {}  # process key (a peer's name, or "inprocess") -> its worker
        self.workers: dict[str, Worker] = {}  # peer -> the worker serving it
        self.envs: dict[str, dict] = {}
        self.missing: dict[str, str] = {}
        self.info: dict[str, dict] = {}
        self.settle_ms: dict[str, list[float]] = {}
        for peer in [p for p in peers if p != "od-graph-noprov"]:
            self._start(peer)
        if "od-graph-noprov" in peers:
            providers = self._numpy_providers()
            if providers is None:
                self.missing["od-graph-noprov"] = "needs an od peer (od-eager or od-graph) to list the providers"
            elif not providers:
                self.missing["od-graph-noprov"] = "no kernel provider for numpy:0 is installed (it would be od-graph)"
            else:
                already = [n for n in os.environ.get("OPDISPATCH_DISABLE_PROVIDERS", "").split(",") if n]
                self.envs["od-graph-noprov"] = {"OPDISPATCH_DISABLE_PROVIDERS": ",".join(sorted({*providers,
                                                                                                 *already}))}
                self._start("od-graph-noprov")
        self.peers = [p for p in peers if p in self.workers]

    def _numpy_providers(self) -> Optional[list[str]]:
        """The enabled, loaded providers serving numpy, as an od peer's worker sees them."""
        for p in ("od-graph", "od-eager"):
            if p in self.info:
                return [name for name, s in self.info[p]["providers"].items()
                        if s["status"] == "loaded" and s["enabled"] and "numpy" in s["targets"]]
        return None

    def _key(self, peer: str) -> str:
        """The process serving ``peer``: its own, or in inprocess mode one for all (but the peer with
        providers disabled, whose environment differs)."""
        return "inprocess" if self.mode == "inprocess" and peer not in self.envs else peer

    def _start(self, peer: str) -> bool:
        """Start (or reuse) ``peer``'s worker and load the peer there; False (and why, in missing) if it cannot."""
        key = self._key(peer)
        if key not in self.procs:
            env = {**os.environ, **(HEAP_MALLOC if self.settings.heap_malloc else {}),
                   **(NO_SPIN if self.settings.no_spin else {}), **thread_env(self.settings.threads),
                   **self.envs.get(peer, {})}
            self.procs[key] = Worker(env, self.work_dir, key, self.show_output)
        worker = self.procs[key]
        try:
            reply = worker.ask({"cmd": "hello", "peer": peer}, self.settings.timeout_s)
        except WorkerDied as exc:
            reply = {"missing": str(exc)}
        if "info" not in reply:
            self.missing[peer] = reply.get("missing") or reply.get("error", "?")
            self.log(f"peer {peer}: not run ({self.missing[peer]})")
            if worker not in self.workers.values():
                worker.close()
                del self.procs[key]
            return False
        self.workers[peer] = worker
        self.info[peer] = reply["info"]
        return True

    def close(self) -> None:
        for w in self.procs.values():
            w.close()

    def _ask(self, peer: str, msg: dict) -> dict:
        return self.workers[peer].ask({**msg, "peer": peer}, self.settings.timeout_s)

    def measure_peak(self) -> dict:
        """The best float32 n^3 matmul of every peer's library (one od peer stands for NumPy), in lockstep."""
        s = self.settings
        libs = [p for p in self.peers if p in OTHER_PEERS] + [p for p in self.peers if p in OD_PEERS][:1]
        flops = 2.0 * s.peak_n ** 3
        best: dict[str, float] = {}
        for _ in range(2):  # two rounds in alternating order, each peer's reps back to back
            for peer in libs:
                try:
                    reply = self._ask(peer, {"cmd": "peak", "n": s.peak_n, "reps": s.peak_reps})
                except WorkerDied as exc:
                    self.log(f"peak on {peer}: {exc}")
                    continue
                if "ms" in reply:
                    best[reply["library"]] = max(best.get(reply["library"], 0.0), flops / min(reply["ms"]) / 1e6)
                if s.settle:
                    wait_idle(self.workers[peer].proc.pid, s.settle_max_ms)
            libs.reverse()
        top = max(best, key=best.__getitem__) if best else None
        return {"n": s.peak_n, "gflops_by_library": best, "gflops": best[top] if top else None, "library": top,
                "nominal_gflops": NOMINAL_PEAK_GFLOPS}

    def prepare(self, wl: Workload, model_path: Optional[str], skipped: dict) -> tuple[list[str], dict[str, str]]:
        """Make ``wl``'s call on every peer and warm it up; the peers ready (the others, and why, go to
        ``skipped``) and where each saved its first output."""
        ready: list[str] = []
        saves: dict[str, str] = {}
        for peer in self.peers:
            saves[peer] = os.path.join(self.work_dir, f"{wl.name}.{peer}.{os.getpid()}.{id(self)}.npy")
            msg = {"cmd": "prepare", "workload": wl.to_json(), "model_path": model_path,
                   "warmup": self.settings.warmup, "save": saves[peer]}
            reply = self._guarded(peer, msg, skipped)
            if reply is None:
                continue
            if "skipped" in reply:
                skipped[peer] = reply["skipped"]
            elif "error" in reply:
                skipped[peer] = f"error: {reply['error']}"
            else:
                ready.append(peer)
            if self.settings.settle and peer in self.workers:
                wait_idle(self.workers[peer].proc.pid, self.settings.settle_max_ms)
        return ready, saves

    def time_rounds(self, peers: list[str], skipped: dict, rounds: int, min_rounds: int, budget_s: float,
                    alone: bool = False, gap_ms: float = 0.0) -> dict[str, list[float]]:
        """Time the prepared call of ``peers``: ``rounds`` rounds of one repetition each in turn (order
        reversed every other round, ``gap_ms`` between two repetitions), no new round after ``budget_s``
        once ``min_rounds`` are done; ``alone``: each peer's repetitions back to back instead. A peer that
        fails is dropped (why: in ``skipped``)."""
        times: dict[str, list[float]] = {p: [] for p in peers}
        start = time.perf_counter()
        if alone:
            for peer in peers:
                t0 = time.perf_counter()
                while peer in times and len(times[peer]) < rounds and not (
                        len(times[peer]) >= min_rounds and time.perf_counter() - t0 > budget_s / len(peers)):
                    self._rep(peer, times, skipped)
                    if gap_ms:
                        time.sleep(gap_ms / 1e3)
            return times
        for round_ in range(rounds):
            for peer in (list(times) if round_ % 2 == 0 else list(times)[::-1]):
                self._rep(peer, times, skipped)
                if self.settings.settle:
                    self._settle(peer)
                if gap_ms:
                    time.sleep(gap_ms / 1e3)
            if round_ + 1 >= min_rounds and time.perf_counter() - start > budget_s:
                break
        return times

    def release(self, peers: list[str], skipped: dict) -> None:
        """Let ``peers`` drop the row's call and data."""
        for peer in peers:
            if peer in self.workers:
                self._guarded(peer, {"cmd": "release"}, skipped)

    def run_row(self, wl: Workload, model_path: Optional[str], peak_gflops: Optional[float]) -> dict:
        """Prepare ``wl`` on every peer, time it in rounds (see the module docstring) and compute its figures."""
        s = self.settings
        skipped: dict[str, str] = {}
        t0 = time.perf_counter()
        self.settle_ms = {}
        ready, saves = self.prepare(wl, model_path, skipped)
        start = time.perf_counter()
        times = self.time_rounds(ready, skipped, s.rounds, s.min_rounds, s.row_budget_s, alone=self.mode == "alone",
                                 gap_ms=s.gap_ms)
        seconds = time.perf_counter() - start
        self.release(ready, skipped)
        result = {"row": wl.name, "label": wl.describe(), "kind": wl.kind, "flops": wl.flops, "bytes": wl.bytes,
                  "seconds": seconds, "prepare_seconds": start - t0, "skipped": skipped}
        result.update(row_figures(wl, times, peak_gflops) if times else
                      {"peers": {}, "ratios": {}, "best_peer": None, "vs_best": {}, "provider_gain": None})
        result["max_rel_diff"] = _compare_outputs({p: saves[p] for p in times}, wl)
        # how long each worker kept using CPU after its repetitions (its thread pools spinning)
        result["settle_ms"] = {p: spread(v) for p, v in self.settle_ms.items() if v}
        return result

    def _rep(self, peer: str, times: dict, skipped: dict) -> None:
        reply = self._guarded(peer, {"cmd": "rep", "n": 1, "min_ms": self.settings.min_rep_ms}, skipped)
        if reply is None or "error" in reply:
            if reply is not None:
                skipped[peer] = f"error: {reply['error']}"
            times.pop(peer, None)  # a peer that failed mid-row is dropped from the row's pairs
            return
        times[peer].extend(reply["ms"])

    def _settle(self, peer: str) -> None:
        """Wait until no thread of ``peer``'s worker is runnable (its thread pools have stopped spinning), at
        most settle_max_ms; the wait is recorded per peer (``settle_ms``)."""
        worker = self.workers.get(peer)
        if worker is None:
            return
        waited = wait_idle(worker.proc.pid, self.settings.settle_max_ms)
        if waited is not None:
            self.settle_ms.setdefault(peer, []).append(waited)

    def _guarded(self, peer: str, msg: dict, skipped: dict) -> Optional[dict]:
        """Ask ``peer``; a dead worker is reported in ``skipped`` and its peers restarted for the next row."""
        try:
            return self._ask(peer, msg)
        except WorkerDied as exc:
            skipped[peer] = str(exc)
            self.log(f"peer {peer} on {msg['cmd']}: {exc}")
            dead = self.workers[peer]
            dead.close()
            lost = [p for p, w in self.workers.items() if w is dead]
            for p in lost:
                del self.workers[p]
            self.procs = {k: w for k, w in self.procs.items() if w is not dead}
            for p in lost:
                self._start(p)
            return None


def _compare_outputs(saved: dict[str, str], wl: Workload) -> dict:
    """Each peer's first output against the reference peer's (ONNX Runtime, else PyTorch, else od-graph):
    max abs difference over the reference's max abs value. A training step's is its first loss."""
    arrays = {p: np.load(path) for p, path in saved.items() if os.path.exists(path)}
    ref = next((p for p in ("onnxruntime", "torch", "od-graph", "od-eager") if p in arrays), None)
    if ref is None:
        return {}
    out: dict[str, Any] = {"reference": ref}
    for p, a in arrays.items():
        if p == ref:
            continue
        if a.shape != arrays[ref].shape:
            out[p] = f"shape {a.shape} != {arrays[ref].shape}"
            continue
        scale = float(np.max(np.abs(arrays[ref]))) or 1.0
        out[p] = float(np.max(np.abs(a - arrays[ref]))) / scale if a.size else 0.0
    return out


# ---- the table ---------------------------------------------------------------------------------------------

def _ratio_cell(r: Optional[dict]) -> str:
    return f"{r['median']:.2f}x [{r['p25']:.2f}-{r['p75']:.2f}]" if r else "-"


def _peer_cell(fig: Optional[dict], kind: str) -> str:
    if fig is None:
        return "-"
    ms = fig["median_ms"]
    text = f"{ms:.3g}" if ms < 10 else f"{ms:.1f}"
    if kind in MEMORY_BOUND and "gbytes_per_s" in fig:
        return f"{text} ({fig['gbytes_per_s']:.0f} GB/s)"
    if "gflops" in fig:
        pct = f", {100 * fig['peak_fraction']:.0f}%" if "peak_fraction" in fig else ""
        return f"{text} ({fig['gflops']:.0f}{pct})"
    return text


def render(report: dict) -> str:
    """The report as two markdown tables (times; paired ratios) and notes."""
    rows, peers = report["rows"], report["peers"]
    peak = report["peak"]
    od_peers = [p for p in OD_PEERS if p in peers]
    others = [p for p in OTHER_PEERS if p in peers]
    st = report["settings"]
    reps = f", repetitions of {st['min_rep_ms']:g} ms" if st.get("min_rep_ms") else ", single-call repetitions"
    out = [f"float32 CPU, {report['cpus']} cores, threads per peer: {st.get('threads') or 'default'}; mode "
           f"{report['mode']}{', settle' if st.get('settle') else ''}{', no spin' if st.get('no_spin') else ''}"
           f"{', heap malloc' if st.get('heap_malloc') else ', default malloc'}{reps}; "
           f"load average at start {report['load_start']}, at end {report['load_end']}.",
           f"Measured peak: {peak['gflops']:.0f} GFLOP/s ({peak['library']}, best {peak['n']}^3 matmul at the start "
           f"and the end; guide: {peak['nominal_gflops']:.0f})." if peak.get("gflops") else
           "Measured peak: none (no peer measured it).",
           "", "Median ms per call (GFLOP/s, % of the measured peak; GB/s for the memory-bound rows):", ""]
    head = ["row", "shape"] + [PEER_TITLES[p] for p in peers]
    lines = [head] + [[r["row"], r["label"]] + [_peer_cell(r["peers"].get(p), r["kind"]) for p in peers]
                      for r in rows]
    out += _markdown(lines)
    cols: list[tuple[str, Callable[[dict], Optional[dict]]]] = []
    for a in od_peers if others else []:
        cols.append((f"{PEER_TITLES[a]} / best", lambda r, a=a: r["vs_best"].get(a)))
    if "od-graph" in od_peers:
        for b in others:
            cols.append((f"od graph / {PEER_TITLES[b]}", lambda r, b=b: r["ratios"].get(f"od-graph/{b}")))
    if "od-graph-noprov" in od_peers and "od-graph" in od_peers:
        cols.append(("provider gain (no providers / with)", lambda r: r["provider_gain"]))
    if cols:
        best = ("the faster of " + " and ".join(PEER_TITLES[p] for p in others) + " by median") \
            if len(others) > 1 else "; ".join(PEER_TITLES[p] for p in others)
        out += ["", "Paired ratios, median [p25-p75] over the rounds (below 1: od faster)"
                + (f"; best = {best}:" if others else ":"), ""]
        lines = [["row", "rounds", "best"] + [c for c, _ in cols]]
        for r in rows:
            n = max((f["ms_spread"]["n"] for f in r["peers"].values()), default=0)
            lines.append([r["row"], str(n), PEER_TITLES.get(r["best_peer"], "-")]
                         + [_ratio_cell(get(r)) for _, get in cols])
        out += _markdown(lines)
    notes = []
    for r in rows:
        for p, why in r["skipped"].items():
            notes.append(f"{r['row']}: {p} not run ({why})")
        for p, d in r["max_rel_diff"].items():
            if p != "reference" and (isinstance(d, str) or d > DIFF_WARN):
                notes.append(f"{r['row']}: {p}'s output differs from {r['max_rel_diff']['reference']}'s: {d}")
    for p, why in report["missing"].items():
        notes.append(f"peer {p}: not run ({why})")
    provs = report.get("providers") or {}
    if provs:
        notes.append("kernel providers: " + "; ".join(f"{n} {s['version']} {s['status']}"
                                                      + (f" ({s['reason']})" if s["reason"] else "")
                                                      for n, s in provs.items()))
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def _markdown(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    fmt = [("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            + " |") for line in lines]
    return [fmt[0], "|" + "|".join(("-" * (w + 2)) if i < 2 else ("-" * (w + 1) + ":") for i, w in enumerate(widths))
            + "|"] + fmt[1:]


# ---- main ----------------------------------------------------------------------------------------------------

def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    """Run the selected rows on the selected peers; the report (see --json)."""
    batches = [int(b) for b in args.model_batches.split(",") if b]
    all_rows = workloads(tiny=args.tiny, model_batches=batches)
    names = [n for n in (args.rows or "").split(",") if n]
    unknown = [n for n in names if n not in {w.name for w in all_rows}]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; allowed: {', '.join(w.name for w in all_rows)}")
    rows = [w for w in all_rows if not names or w.name in names]
    peers = [p for p in args.peers.split(",") if p]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise SystemExit(f"unknown peer(s) {bad}; allowed: {', '.join(PEERS)}")
    settings = Settings(rounds=args.rounds, min_rounds=min(args.min_rounds, args.rounds), row_budget_s=args.row_budget,
                        warmup=args.warmup, gap_ms=args.gap_ms, min_rep_ms=args.min_rep_ms, peak_n=args.peak_n,
                        settle=args.settle,
                        no_spin=args.no_spin, threads=args.threads, heap_malloc=not args.default_malloc)
    report: dict[str, Any] = {"mode": args.mode, "cpus": os.cpu_count(), "load_start": _load(),
                              "settings": dataclasses.asdict(settings), "tiny": args.tiny}
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        model_dir = args.model_dir or (tmp if args.no_model_cache else default_model_dir())
        os.makedirs(model_dir, exist_ok=True)
        models, export_error = export_models(rows, model_dir, log) if any(w.kind == "model" for w in rows) \
            else ({}, None)
        bench = Bench(peers, args.mode, settings, tmp, args.show_worker_output, log)
        try:
            report["peers"] = bench.peers
            report["missing"] = dict(bench.missing)
            report["info"] = bench.info
            od_info = next((bench.info[p] for p in ("od-graph", "od-eager") if p in bench.info), {})
            report["providers"] = od_info.get("providers", {})
            report["peak"] = bench.measure_peak() if args.peak is None else \
                {"n": 0, "gflops": args.peak, "library": "given (--peak)", "nominal_gflops": NOMINAL_PEAK_GFLOPS}
            if report["peak"].get("gflops"):
                log(f"peak: {report['peak']['gflops']:.0f} GFLOP/s ({report['peak']['library']})")
            report["rows"] = []
            for wl in rows:
                path = None
                if wl.kind == "model":
                    if wl.name not in models:
                        report["rows"].append({"row": wl.name, "label": wl.describe(), "kind": wl.kind,
                                               "flops": 0.0, "bytes": 0.0, "seconds": 0.0, "peers": {},
                                               "ratios": {}, "best_peer": None, "vs_best": {},
                                               "provider_gain": None, "max_rel_diff": {},
                                               "skipped": {"all": export_error or "not exported"}})
                        continue
                    path, flops = models[wl.name]
                    wl = dataclasses.replace(wl, flops=flops)
                result = bench.run_row(wl, path, report["peak"].get("gflops"))
                log(f"{wl.name}: prepared in {result['prepare_seconds']:.1f} s, timed in {result['seconds']:.1f} s: "
                    + ", ".join(f"{p} {f['median_ms']:.3g} ms" for p, f in result["peers"].items()))
                report["rows"].append(result)
            if args.peak is None and rows:
                # measured again at the end, the best of both kept: a loaded machine depresses either
                end = bench.measure_peak()
                start_peak = report["peak"]
                if end.get("gflops") and end["gflops"] > (start_peak.get("gflops") or 0.0):
                    end["gflops_at_start"] = start_peak.get("gflops")
                    report["peak"] = end
                else:
                    start_peak["gflops_at_end"] = end.get("gflops")
                set_peak_fractions(report["rows"], report["peak"].get("gflops"))
        finally:
            bench.close()
    report["load_end"] = _load()
    return report


def set_peak_fractions(rows: list[dict], peak_gflops: Optional[float]) -> None:
    """Each peer's GFLOP/s as a share of ``peak_gflops`` (``peak_fraction``), in every row."""
    for row in rows:
        for fig in row["peers"].values():
            fig.pop("peak_fraction", None)
            if peak_gflops and "gflops" in fig:
                fig["peak_fraction"] = fig["gflops"] / peak_gflops


def parse_args(argv: Optional[Iterable[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, from {', '.join(PEERS)} "
                        "(default: all; od-graph-noprov runs only where a kernel provider is installed)")
    parser.add_argument("--rows", "--only", dest="rows",
                        help="comma-separated row names (default: all): " + ", ".join(w.name for w in WORKLOADS))
    parser.add_argument("--rounds", type=int, default=None, help="paired rounds per row, at most (default 15)")
    parser.add_argument("--min-rounds", type=int, default=None, help="rounds per row at least (default 5)")
    parser.add_argument("--row-budget", type=float, default=None,
                        help="seconds per row after which no new round starts, once min-rounds are done "
                             "(default 30)")
    parser.add_argument("--warmup", type=int, default=None, help="calls per peer before timing (default 2)")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between two repetitions (default 0)")
    parser.add_argument("--min-rep-ms", type=float, default=10.0,
                        help="a repetition calls the row's function back to back until this many ms and counts "
                             "the median call (default 10; 0: one call, which includes waking the idle pools)")
    parser.add_argument("--no-settle", dest="settle", action="store_false",
                        help="start the next peer's repetition at once, not when the previous worker has gone "
                             "idle (its thread pools spin for some ms after a call)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per peer (OpenMP, OpenBLAS, MKL, torch, ONNX Runtime; default: each library's "
                             "own, all cores); 1 makes the ratios less sensitive to a loaded machine")
    parser.add_argument("--no-spin", action="store_true",
                        help="start the workers with idle thread pools that sleep at once (OMP_WAIT_POLICY=PASSIVE, "
                             "OPENBLAS_THREAD_TIMEOUT=4, ONNX Runtime without intra-op spinning)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="run the workers with glibc's malloc defaults (large arrays mmap'd and unmapped on "
                             "every call) instead of HEAP_MALLOC")
    parser.add_argument("--mode", choices=MODES, default="lockstep",
                        help="lockstep: one process per peer, one repetition each in turn (default); inprocess: "
                             "the same alternation with every peer in one process; alone: each peer's "
                             "repetitions back to back")
    parser.add_argument("--model-batches", default="1,16", help="batch sizes of the model rows (default 1,16)")
    parser.add_argument("--model-dir", help="keep the exported ONNX models here (reused by later runs; default: "
                        "a folder under ~/.cache/opdispatch-bench named after the exporter's and torch's versions)")
    parser.add_argument("--no-model-cache", action="store_true",
                        help="export the models afresh, into a temporary folder")
    parser.add_argument("--peak", type=float, help="use this peak GFLOP/s instead of measuring it")
    parser.add_argument("--peak-n", type=int, default=None, help="matmul size of the peak measurement (default 2048)")
    parser.add_argument("--quick", action="store_true",
                        help="about a minute: 5 rounds (3 at least), 3 s a row, one warm-up, model rows at batch 1")
    parser.add_argument("--tiny", action="store_true", help="small shapes of the same rows (for the tests)")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--show-worker-output", action="store_true",
                        help="let the workers' stderr through (e.g. with ONEDNN_VERBOSE=1)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"rounds": 5 if quick else 15, "min_rounds": 3 if quick else 5, "row_budget": 3.0 if quick else 30.0,
                "warmup": 1 if quick else 2, "peak_n": 256 if args.tiny else (1536 if quick else 2048)}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if quick and args.model_batches == "1,16":
        args.model_batches = "1"
    if args.rounds < 1 or args.min_rounds < 1:
        parser.error("--rounds and --min-rounds must be at least 1")
    return args


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker_main()
        return
    if args.export:
        export_main(args.export.split(","), args.model_dir)
        return

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report = run(args, log)
    print(render(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
