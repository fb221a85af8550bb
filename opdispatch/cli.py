"""The ``opdispatch`` command: ``devices`` lists backends and devices; ``demo`` runs every op."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import numpy as np

from .device import Device
from .errors import OpDispatchError
from .registry import registry


def cmd_devices(args: argparse.Namespace) -> int:
    """Print every backend with its version, status and devices."""
    reg = registry()
    statuses = reg.backends()
    if not statuses:
        print("no backend plugin is installed (pip install opdispatch-numpy)")
        return 1
    for st in statuses.values():
        print(f"{st.name:<16} {st.version or '?':<28} {st.status}" + (f": {st.reason}" if st.reason else ""))
        print(f"{'':<16} plugin: {st.origin}")
        for dev in st.devices:
            info = reg.runtime(dev).info
            dtypes = ", ".join(sorted(d.name for d in info.dtype_set))
            print(f"{'':<16} {str(dev):<12} {info.name or '-'} [{dtypes}] {len(st.ops)} ops")
    return 0


def demo_calls(rng: np.random.Generator, dtype: str) -> list[tuple[str, object]]:
    """(label, thunk) pairs that call every op once on small random data."""
    import opdispatch as od

    def t(*shape: int) -> od.Tensor:
        return od.tensor(rng.standard_normal(shape), dtype=dtype)

    x, w, b = t(2, 3, 8, 8), t(4, 3, 3, 3), t(4)
    rm, rv = t(3), od.tensor(rng.uniform(0.5, 2.0, 3), dtype=dtype)
    m = t(4, 5)
    pos = od.tensor(rng.uniform(0.1, 2.0, (4, 5)), dtype=dtype)
    labels = od.tensor([0, 2, 1, 4])
    return [
        ("conv2d SAME stride 2", lambda: od.conv2d(x, w, b, stride=2, padding="SAME")),
        ("conv2d depthwise dilation 2", lambda: od.conv2d(x, t(3, 1, 3, 3), padding=2, dilation=2, groups=3)),
        ("max_pool2d 3x3/2 ceil_mode", lambda: od.max_pool2d(x, 3, stride=2, ceil_mode=True)),
        ("avg_pool2d 2x2 pad 1", lambda: od.avg_pool2d(x, 2, padding=1, count_include_pad=False)),
        ("batch_norm inference", lambda: od.batch_norm(x, rm, rv, t(3), t(3))),
        ("batch_norm training", lambda: od.batch_norm(x, rm, rv, training=True)[2]),
        ("matmul", lambda: od.matmul(m, t(5, 3))),
        ("relu", lambda: od.relu(m)), ("sigmoid", lambda: od.sigmoid(m)), ("tanh", lambda: od.tanh(m)),
        ("exp", lambda: od.exp(m)), ("log", lambda: od.log(pos)), ("sqrt", lambda: od.sqrt(pos)),
        ("neg", lambda: -m), ("add", lambda: m + 1.0), ("sub", lambda: m - m), ("mul", lambda: m * m),
        ("div", lambda: m / pos), ("sum axis 1", lambda: od.sum(m, axis=1)), ("mean", lambda: od.mean(m)),
        ("max keepdims", lambda: od.max(m, axis=0, keepdims=True)), ("reshape", lambda: od.reshape(m, (5, -1))),
        ("transpose", lambda: od.transpose(m)), ("flatten", lambda: od.flatten(x)),
        ("softmax", lambda: od.softmax(m)), ("log_softmax", lambda: od.log_softmax(m, axis=0)),
        ("softmax_cross_entropy", lambda: od.softmax_cross_entropy(m, labels)),
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    """Run every op once on the chosen device and print shapes, timings and a checksum."""
    import opdispatch as od

    rng = np.random.default_rng(0)
    failures = 0
    with od.device(args.device):
        print(f"device {od.get_device()} dtype {args.dtype}")
        for label, thunk in demo_calls(rng, args.dtype):
            start = time.perf_counter()
            try:
                y = thunk()  # type: ignore[operator]
                ms = (time.perf_counter() - start) * 1e3
                print(f"  {label:<30} -> shape {str(y.shape):<16} {ms:8.3f} ms  sum {float(np.sum(y.numpy())): .6g}")
            except OpDispatchError as exc:
                failures += 1
                print(f"  {label:<30} FAILED: {exc}")
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``opdispatch`` console script."""
    parser = argparse.ArgumentParser(prog="opdispatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("devices", help="list backends, their status and devices").set_defaults(fn=cmd_devices)
    demo = sub.add_parser("demo", help="run every op once on a device")
    demo.add_argument("--device", default="numpy:0", type=lambda s: Device(s))
    demo.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    demo.set_defaults(fn=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except OpDispatchError as exc:
        print(f"opdispatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
