"""The ``opdispatch`` command: ``devices`` lists backends, providers and devices (``--kernels``: which
kernel each op runs on each device); ``conformance`` runs the conformance suite, which is its own
distribution (``opdispatch-conformance``)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Optional, Sequence

from .device import Device
from .errors import OpDispatchError
from .registry import registry

CONFORMANCE_HINT = ("the conformance suite is its own distribution: pip install opdispatch-conformance "
                    "(in this repository: pip install -e conformance)")


def cmd_devices(args: argparse.Namespace) -> int:
    """Print every backend with its version, status and devices, then the kernel providers."""
    reg = registry()
    statuses = reg.backends(hidden=args.hidden)
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
    for p in reg.providers().values():
        print(f"{p.name:<16} {p.version or '?':<28} provider {p.status}"
              + (f": {p.reason}" if p.reason else f", priority {p.priority}, for {', '.join(p.targets)}, "
                 f"{len(p.ops)} ops{'' if p.enabled else ' (disabled)'}"))
        print(f"{'':<16} plugin: {p.origin}")
    if args.kernels:
        devices = reg.devices(hidden=args.hidden) if not args.device else [Device(d) for d in args.device]
        for dev in devices:
            print(f"\n{dev}: op -> kernels in dispatch order (the first that accepts a call runs it)")
            rows = reg.kernels([dev], args.op)
            by_op: dict[str, list[str]] = {}
            for row in rows:
                tag = f"{row.provider} (priority {row.priority}{', conditional' if row.conditional else ''}" \
                      f"{', disabled' if not row.enabled else ''})"
                by_op.setdefault(row.op, []).append(tag)
            for op, tags in by_op.items():
                print(f"  {op:<32} {' > '.join(tags)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``opdispatch`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["conformance"]:
        if importlib.util.find_spec("opdispatch_conformance") is None:
            print(f"opdispatch: error: {CONFORMANCE_HINT}", file=sys.stderr)
            return 2
        from opdispatch_conformance.cli import main as conformance_main

        return conformance_main(argv[1:])
    parser = argparse.ArgumentParser(prog="opdispatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("devices", help="list backends, kernel providers, their status and devices")
    dev.add_argument("--kernels", action="store_true", help="also list, per device and op, the kernels in the order "
                                                             "dispatch tries them")
    dev.add_argument("--device", action="append", help="with --kernels: only this device (repeatable)")
    dev.add_argument("--op", help="with --kernels: only this op")
    dev.add_argument("--hidden", action="store_true", help="include hidden backends (the built-in reference:0)")
    dev.set_defaults(fn=cmd_devices)
    sub.add_parser("conformance", help=f"run the conformance suite ({CONFORMANCE_HINT})")
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except OpDispatchError as exc:
        print(f"opdispatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
