"""The oneDNN provider's kernels against the NumPy backend's own kernels and PyTorch, paired in one process.

Run: python bench/onednn_kernels.py [--only conv_b,maxpool_112] [--reps 15]
     python bench/onednn_kernels.py --profile [--only conv_c]   (oneDNN's own time per primitive)
     python bench/onednn_kernels.py --bn-layouts   (batch norm: the channels-last JIT path vs the plain one)

Each repetition runs every peer once, in an order that rotates between repetitions, with a short sleep
between calls (OpenMP threads stop spinning); each row prints the median ms per peer and the median (and
the 25-75% spread) of the per-repetition ratios onednn / peer, so a load change during the run moves
both sides of a ratio. (For conv_transpose2d, which has no NumPy kernel, ``numpy`` is its
decomposition, on the provider's conv2d_backward_input.) Peers: ``onednn`` (od eager, the provider's
kernel: dispatch picks it), ``numpy`` (od eager inside ``od.use_provider("numpy")``, the built-in kernel),
``torch`` (PyTorch eager, which runs its own bundled oneDNN). PyTorch is optional
(``pip install -e '.[bench]'``). The matmul rows interleave oneDNN with OpenBLAS, whose worker thread
spins on a core after a multi-threaded call and delays the next oneDNN call's OpenMP team:
``OPENBLAS_NUM_THREADS=1`` compares the kernels without that interaction.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

import opdispatch as od

conv2d_backward_input = od.op_function("conv2d_backward_input")
conv2d_backward_weight = od.op_function("conv2d_backward_weight")


def _conv_rows() -> dict[str, dict]:
    rows = {}
    for name, x, w, s, p in (("conv_a", (128, 1, 28, 28), (32, 1, 5, 5), 1, 2),
                             ("conv_b", (128, 32, 14, 14), (64, 32, 5, 5), 1, 2),
                             ("conv_c", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1),
                             ("conv_d", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3)):
        rows[name] = {"kind": "conv", "x": x, "w": w, "stride": s, "pad": p}
    rows["conv_b_bias_relu"] = dict(rows["conv_b"], kind="conv_bias_relu")
    rows["conv_dw"] = {"kind": "conv", "x": (32, 128, 28, 28), "w": (128, 1, 3, 3), "stride": 1, "pad": 1,
                       "groups": 128}
    rows["conv_a_bwd"] = dict(rows["conv_a"], kind="conv_bwd")
    rows["conv_c_bwd"] = dict(rows["conv_c"], kind="conv_bwd")
    return rows


ROWS: dict[str, dict] = _conv_rows()
ROWS.update({
    "maxpool_28": {"kind": "maxpool", "x": (128, 32, 28, 28)},
    "maxpool_112": {"kind": "maxpool", "x": (32, 64, 112, 112)},
    "maxpool_112_bwd": {"kind": "maxpool_bwd", "x": (32, 64, 112, 112)},
    "avgpool_112": {"kind": "avgpool", "x": (32, 64, 112, 112)},
    "bn_train": {"kind": "bn_train", "x": (32, 64, 56, 56)},
    "bn_eval": {"kind": "bn_eval", "x": (32, 64, 56, 56)},
    "bn_train_bwd": {"kind": "bn_bwd", "x": (32, 64, 56, 56)},
    "convt_dcgan": {"kind": "conv_transpose", "x": (64, 128, 16, 16), "w": (128, 64, 4, 4), "stride": 2, "pad": 1},
    "convt_bias_op": {"kind": "conv_transpose", "x": (32, 64, 28, 28), "w": (64, 32, 3, 3), "stride": 2, "pad": 1,
                      "output_padding": 1, "bias": True},
    "bn_train_14": {"kind": "bn_train", "x": (128, 32, 14, 14)},
    "bn_train_bwd_14": {"kind": "bn_bwd", "x": (128, 32, 14, 14)},
    "bn_eval_14": {"kind": "bn_eval", "x": (128, 32, 14, 14)},
})
ELTWISE_ATTRS: dict[str, dict] = {"leaky_relu": {"negative_slope": 0.1}, "gelu": {"approximate": "none"},
                                  "gelu_tanh": {"approximate": "tanh"}}
ROWS.update({f"{op}_{tag}": {"kind": "eltwise", "op": op, "x": x}
             for op in ("sigmoid", "gelu", "gelu_tanh", "hardswish", "hardsigmoid", "leaky_relu")
             for tag, x in (("64k", (64, 32, 32)), ("800k", (128, 32, 14, 14)), ("6m", (32, 64, 56, 56)))})
ROWS.update({  # matmul: "a", "b" shapes; "ta": a is the transpose of a C-contiguous array (a gradient's view)
    "matmul_64": {"kind": "matmul", "a": (64, 64), "b": (64, 64)},
    "matmul_256": {"kind": "matmul", "a": (256, 256), "b": (256, 256)},
    "matmul_1024": {"kind": "matmul", "a": (1024, 1024), "b": (1024, 1024)},
    "matmul_fc": {"kind": "matmul", "a": (128, 800), "b": (800, 500)},
    "matmul_fc_small": {"kind": "matmul", "a": (128, 500), "b": (500, 10)},
    "matmul_fc_dw": {"kind": "matmul", "a": (800, 128), "b": (128, 500), "ta": True},
    "matmul_vec": {"kind": "matmul", "a": (1024,), "b": (1024, 1024)},
    "bmm_attn": {"kind": "matmul", "a": (16, 128, 64), "b": (16, 64, 128)},
    "bmm_small": {"kind": "matmul", "a": (256, 16, 16), "b": (256, 16, 16)},
    "bmm_bcast": {"kind": "matmul", "a": (8, 128, 64), "b": (64, 256)},
})


def _inputs(row: dict) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if row["kind"] in ("conv", "conv_bwd", "conv_bias_relu"):
        x = rng.standard_normal(row["x"], dtype=np.float32)
        w = rng.standard_normal(row["w"], dtype=np.float32) * 0.1
        out = [x, w]
        if row["kind"] == "conv_bias_relu":
            out.append(rng.standard_normal(row["w"][0], dtype=np.float32))
        if row["kind"] == "conv_bwd":
            s, p, k = row["stride"], row["pad"], row["w"][2]
            oh = (row["x"][2] + 2 * p - k) // s + 1
            ow = (row["x"][3] + 2 * p - row["w"][3]) // s + 1
            out.append(rng.standard_normal((row["x"][0], row["w"][0], oh, ow), dtype=np.float32))
        return out
    if row["kind"] == "conv_transpose":
        out = [rng.standard_normal(row["x"], dtype=np.float32), rng.standard_normal(row["w"], dtype=np.float32) * 0.1]
        return out + ([rng.standard_normal(row["w"][1], dtype=np.float32)] if row.get("bias") else [])
    if row["kind"] == "eltwise":
        x = rng.standard_normal(row["x"], dtype=np.float32)
        return [x]
    if row["kind"] == "matmul":
        a_shape = row["a"][::-1] if row.get("ta") else row["a"]
        a = rng.standard_normal(a_shape, dtype=np.float32)
        return [a.T if row.get("ta") else a, rng.standard_normal(row["b"], dtype=np.float32)]
    x = rng.standard_normal(row["x"], dtype=np.float32)
    if row["kind"] == "maxpool_bwd":
        n, c, h, w = row["x"]
        return [x, rng.standard_normal((n, c, h // 2, w // 2), dtype=np.float32)]
    c = row["x"][1]
    stats = [np.zeros(c, np.float32), np.ones(c, np.float32), np.ones(c, np.float32), np.zeros(c, np.float32)]
    if row["kind"] == "bn_bwd":
        return [x, rng.standard_normal(row["x"], dtype=np.float32)] + stats[:3]
    return [x] + stats


def od_call(row: dict, pin: Optional[str]) -> Callable[[], Any]:
    ts = [od.tensor(a) for a in _inputs(row)]
    if row["kind"] == "matmul" and row.get("ta"):  # a transposed view, as the matmul gradient makes
        ts[0] = od.transpose(od.tensor(np.ascontiguousarray(_inputs(row)[0].T)), (1, 0))
    kw = {"stride": row["stride"], "padding": row["pad"], "groups": row.get("groups", 1)} if "w" in row else {}
    kind = row["kind"]
    max_pool2d_backward = od.op_function("max_pool2d_backward")
    batch_norm_backward = od.op_function("batch_norm_backward")
    if kind == "conv_transpose":
        tkw = {"stride": row["stride"], "padding": row["pad"], "output_padding": row.get("output_padding", 0)}

        def fn() -> Any:
            return od.conv_transpose2d(*ts, **tkw)

        if pin == "numpy":  # no NumPy kernel: the op's decomposition, as it ran before the provider's kernel
            return _transpose_decomposition(row, ts)
    elif kind == "eltwise":
        op = od.op_function(row["op"].replace("gelu_tanh", "gelu"))
        attrs = ELTWISE_ATTRS.get(row["op"], {})

        def fn() -> Any:
            return op(ts[0], **attrs)
    elif kind == "matmul":
        def fn() -> Any:
            return od.matmul(ts[0], ts[1])
    elif kind == "maxpool":
        def fn() -> Any:
            return od.max_pool2d(ts[0], 2)
    elif kind == "avgpool":
        def fn() -> Any:
            return od.avg_pool2d(ts[0], 2)
    elif kind == "maxpool_bwd":
        def fn() -> Any:
            return max_pool2d_backward(ts[0], ts[1], kernel_size=2)
    elif kind in ("bn_train", "bn_eval"):
        def fn() -> Any:
            return od.batch_norm(*ts, training=kind == "bn_train")
    elif kind == "bn_bwd":
        def fn() -> Any:
            return batch_norm_backward(*ts, training=True)
    elif kind == "conv":
        def fn() -> Any:
            return od.conv2d(ts[0], ts[1], **kw)
    elif kind == "conv_bias_relu":
        conv2d_bias_relu = od.op_function("conv2d_bias_relu")

        def fn() -> Any:
            return conv2d_bias_relu(ts[0], ts[1], ts[2], **kw)
    elif kind == "conv_bwd":
        x, w, dy = ts

        def fn() -> Any:
            return (conv2d_backward_input(dy, w, input_shape=x.shape, **kw),
                    conv2d_backward_weight(x, dy, weight_shape=w.shape, **kw))
    else:
        raise NotImplementedError(kind)
    if pin is None:
        return fn

    def pinned() -> Any:
        with od.use_provider(pin):
            return fn()
    return pinned


def _transpose_decomposition(row: dict, ts: list) -> Callable[[], Any]:
    """conv_transpose2d's decomposition (opdispatch.ops.conv): conv2d_backward_input, a zero pad, the bias."""
    from opdispatch.ops.conv import transpose_geometry

    x, w = ts[0], ts[1]
    s, p, op_ = row["stride"], row["pad"], row.get("output_padding", 0)
    _, inner, pads, extra = transpose_geometry(x.shape[2:], w.shape[2:], (s, s), ((p, p), (p, p)), (op_, op_), (1, 1))
    c_out = w.shape[1]

    def fn() -> Any:
        y = conv2d_backward_input(x, w, input_shape=(x.shape[0], c_out) + inner, stride=s, padding=pads)
        if any(extra):
            y = od.pad(y, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        return y if len(ts) == 2 else y + od.reshape(ts[2], (c_out, 1, 1))
    return fn


def torch_call(row: dict) -> Callable[[], Any]:
    import torch
    import torch.nn.functional as F

    torch.set_grad_enabled(False)
    ts = [torch.from_numpy(a) for a in _inputs(row)]
    kind = row["kind"]
    if kind == "eltwise":
        raise ImportError("no PyTorch peer for the eltwise rows")
    if kind == "conv_transpose":
        return lambda: F.conv_transpose2d(*ts, stride=row["stride"], padding=row["pad"],
                                          output_padding=row.get("output_padding", 0))
    if kind == "matmul":
        return lambda: torch.matmul(ts[0], ts[1])
    if kind == "maxpool":
        return lambda: F.max_pool2d(ts[0], 2)
    if kind == "avgpool":
        return lambda: F.avg_pool2d(ts[0], 2)
    if kind == "maxpool_bwd":
        x, dy = ts
        y, idx = F.max_pool2d(x, 2, return_indices=True)
        return lambda: torch.ops.aten.max_pool2d_with_indices_backward(dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                                       idx)
    if kind in ("bn_train", "bn_eval"):
        x, rm, rv, g, b = ts
        return lambda: F.batch_norm(x, rm.clone(), rv.clone(), g, b, training=kind == "bn_train")
    if kind == "bn_bwd":
        x, dy, rm, rv, g = ts
        mean, invstd = x.mean((0, 2, 3)), 1 / (x.var((0, 2, 3), unbiased=False) + 1e-5).sqrt()
        return lambda: torch.ops.aten.native_batch_norm_backward(dy, x, g, rm, rv, mean, invstd, True, 1e-5,
                                                                 [True, True, True])
    s, p, g = row["stride"], row["pad"], row.get("groups", 1)
    if kind == "conv":
        return lambda: F.conv2d(ts[0], ts[1], stride=s, padding=p, groups=g)
    if kind == "conv_bias_relu":
        return lambda: F.relu(F.conv2d(ts[0], ts[1], ts[2], stride=s, padding=p, groups=g))
    if kind == "conv_bwd":
        x, w, dy = ts
        return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g,
                                                           [True, True, False])
    raise NotImplementedError(kind)


def paired(calls: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Per peer, ``reps`` timings (ms), one call each per repetition in a rotating order."""
    names = list(calls)
    for fn in calls.values():  # warm-up: primitive creation, JIT, buffers
        fn()
        fn()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for n in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(0.005)
            t0 = time.perf_counter()
            calls[n]()
            times[n].append((time.perf_counter() - t0) * 1e3)
    return times


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], statistics.median(v), q[2]


def profile(names: list[str], reps: int) -> None:
    """Per row, oneDNN's own time per primitive (``ONEDNN_VERBOSE=1`` in a child running the provider
    only), summed over each call: how much of a call the layout reorders take."""
    for name in names:
        env = {**os.environ, "ONEDNN_VERBOSE": "1"}
        out = subprocess.run([sys.executable, __file__, "--only", name, "--reps", str(reps), "--provider-only"],
                             capture_output=True, text=True, env=env, check=True).stdout
        total: collections.Counter = collections.Counter()
        for line in out.splitlines():
            f = line.split(",")
            if len(f) > 10 and f[1] == "exec":
                total[f"{f[3]} {f[4]} {f[-2]}"] += float(f[-1])
        calls = reps + 2  # the warm-up calls are in the log too
        whole = sum(total.values())
        print(f"{name}: oneDNN time per call {whole / calls:.2f} ms")
        for what, ms in total.most_common():
            print(f"  {ms / calls:>8.3f} ms {100 * ms / whole:>5.1f}%  {what}")


def bn_layouts(names: list[str], reps: int) -> None:
    """The batch-norm rows with the provider's channels-last JIT path against its plain-layout path
    (``opdispatch_onednn.norm.CHANNELS_LAST`` on and off), paired, back to back."""
    from opdispatch_onednn import norm

    print(f"{'row':<18} {'nhwc ms':>10} {'plain ms':>10}   {'nhwc/plain [25%-75%]':>24}")
    for name in names:
        fn = od_call(ROWS[name], None)
        times: dict[bool, list[float]] = {True: [], False: []}
        for flag in (True, False):
            norm.CHANNELS_LAST = flag
            fn()
            fn()
        for r in range(reps):
            for flag in ((True, False) if r % 2 else (False, True)):
                norm.CHANNELS_LAST = flag
                t0 = time.perf_counter()
                fn()
                times[flag].append((time.perf_counter() - t0) * 1e3)
        norm.CHANNELS_LAST = True
        lo, mid, hi = _quartiles([a / b for a, b in zip(times[True], times[False])])
        print(f"{name:<18} {statistics.median(times[True]):>10.2f} {statistics.median(times[False]):>10.2f}   "
              f"{f'{mid:>8.2f}x [{lo:.2f}-{hi:.2f}]':>24}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated rows (default: all)")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="oneDNN's time per primitive of each row")
    ap.add_argument("--bn-layouts", action="store_true",
                    help="the bn_* rows: the provider's channels-last path against its plain one")
    ap.add_argument("--provider-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ROWS)
    if args.profile:
        profile(names, args.reps)
        return
    if args.bn_layouts:
        bn_layouts([n for n in names if n.startswith("bn_")], args.reps)
        return
    if args.provider_only:
        for name in names:
            fn = od_call(ROWS[name], None)
            for _ in range(args.reps + 2):
                fn()
        return
    status = od.providers().get("onednn")
    if status is None or status.status != "loaded":
        raise SystemExit(f"the onednn provider is not loaded: {status}")
    print(f"{'row':<18} {'onednn ms':>10} {'numpy ms':>10} {'torch ms':>10}   "
          f"{'onednn/numpy [25%-75%]':>24} {'onednn/torch [25%-75%]':>24}")
    for name in names:
        row = ROWS[name]
        calls = {"onednn": od_call(row, None), "numpy": od_call(row, "numpy")}
        if not args.no_torch:
            try:
                calls["torch"] = torch_call(row)
            except ImportError:
                pass
        t = paired(calls, args.reps)
        med = {n: statistics.median(v) for n, v in t.items()}
        cols = [f"{med.get(n, float('nan')):>10.2f}" for n in ("onednn", "numpy", "torch")]
        ratios = []
        for peer in ("numpy", "torch"):
            if peer in t:
                lo, mid, hi = _quartiles([a / b for a, b in zip(t["onednn"], t[peer])])
                ratios.append(f"{mid:>8.2f}x [{lo:.2f}-{hi:.2f}]".rjust(24))
            else:
                ratios.append(f"{'-':>24}")
        print(f"{name:<18} {' '.join(cols)}   {' '.join(ratios)}", flush=True)


if __name__ == "__main__":
    main()
