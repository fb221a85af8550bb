"""The ``opdispatch`` command: ``devices`` lists backends, providers and devices (``--kernels``: which
kernel each op runs on each device); ``ops`` prints every op as a kernel sees it (inputs, kernel
signature, attribute forms, dtypes, gradients, decomposition); ``new-backend NAME`` writes a
complete backend distribution to start from. Other subcommands come from installed distributions through the
entry point group ``opdispatch.commands`` (name -> ``main(argv) -> int``): ``conformance`` is the
conformance suite's (distribution ``opdispatch-conformance``)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from typing import Any, Callable, Optional, Sequence

from .device import Device
from .errors import OpDispatchError
from .ops import OPS, get_schema
from .registry import KernelListing, registry

COMMAND_GROUP = "opdispatch.commands"
CONFORMANCE_HINT = ("the conformance suite is its own distribution: pip install opdispatch-conformance "
                    "(in this repository: pip install -e conformance)")


BUILTIN_COMMANDS = ("devices", "ops", "new-backend")
# the exit status when the reader of stdout went away (`opdispatch ops | head`): 128 + SIGPIPE, what a
# command killed by SIGPIPE reports, for every subcommand
EXIT_BROKEN_PIPE = 141


def installed_commands() -> dict[str, Any]:
    """Subcommands other distributions provide: name -> entry point (loaded only when run); the
    built-in commands cannot be replaced."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMAND_GROUP)
            if ep.name not in BUILTIN_COMMANDS}


def kernel_tag(row: KernelListing) -> str:
    """One kernel of the ``--kernels`` listing: its provider, priority and dtypes (what tells apart a
    provider's several kernels for one op, e.g. NumPy's float16 kernel from its float32/float64 one)."""
    return (f"{row.provider} (priority {row.priority}, {'/'.join(row.dtypes)}"
            f"{', conditional' if row.conditional else ''}{', disabled' if not row.enabled else ''})")


def cmd_devices(args: argparse.Namespace) -> int:
    """Print every backend with its version, status and devices, then the kernel providers."""
    if args.op is not None:
        get_schema(args.op)  # an unknown op: say so before listing anything
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
            for fact, value in info.driver.items():  # what the backend tells of the device's driver
                print(f"{'':<16} {'':<12} {fact}: {value}")
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
                by_op.setdefault(row.op, []).append(kernel_tag(row))
            for op in sorted(OPS) if args.op is None else [args.op]:
                tags = by_op.get(op, [])
                if OPS[op].decomposition is not None:
                    tags = tags + ["its decomposition" + ("" if tags else " (no kernel)")]
                print(f"  {op:<32} {' > '.join(tags) if tags else 'nothing: unsupported'}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    """Print every op (or ``--op``'s) from the op table, as text or ``--json``."""
    from . import op_reference

    entries = [op_reference.describe(get_schema(args.op).name)] if args.op else op_reference.all_ops()
    if args.json:
        print(json.dumps(entries if not args.op else entries[0], indent=1))
    else:
        print("\n\n".join(op_reference.text(e) for e in entries))
    return 0


def cmd_new_backend(args: argparse.Namespace) -> int:
    """Write a new backend distribution and say what to run next."""
    from .scaffold import new_backend, template_values

    dist = template_values(args.name)["dist"]
    root = args.dir or dist
    files = new_backend(args.name, root)
    print(f"wrote {len(files)} files of {dist} into {root}:")
    for path in files:
        print(f"  {path}")
    print(f"next:\n  pip install -e '{root}[test]'\n  opdispatch conformance --device {args.name}:0")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``opdispatch`` console script. A closed stdout (``opdispatch ops | head``)
    ends any subcommand quietly with status ``EXIT_BROKEN_PIPE``, no traceback."""
    try:
        try:
            return _run(argv)
        finally:  # also after --help's SystemExit: a closed pipe fails here, not in the flush at exit
            sys.stdout.flush()
    except BrokenPipeError:
        # point stdout at devnull so the flush at interpreter exit has nowhere to fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _run(argv: Optional[Sequence[str]]) -> int:
    """Parse ``argv`` and run the subcommand it names."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = installed_commands()
    if argv and argv[0] in commands:
        ep = commands[argv[0]]
        try:
            command: Callable[[list[str]], int] = ep.load()
        except Exception as exc:  # a broken distribution: say which, do not dump a traceback
            print(f"opdispatch: error: the command {argv[0]!r} ({ep.value}) failed to load: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        return int(command(argv[1:]))
    if argv[:1] == ["conformance"]:
        print(f"opdispatch: error: {CONFORMANCE_HINT}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="opdispatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("devices", help="list backends, kernel providers, their status and devices")
    dev.add_argument("--kernels", action="store_true", help="also list, per device and op, the kernels in the order "
                                                             "dispatch tries them")
    dev.add_argument("--device", action="append", help="with --kernels: only this device (repeatable)")
    dev.add_argument("--op", help="with --kernels: only this op")
    dev.add_argument("--hidden", action="store_true", help="include hidden backends (the built-in reference:0)")
    dev.set_defaults(fn=cmd_devices)
    ops = sub.add_parser("ops", help="every op: inputs, kernel signature, attribute forms, dtypes, gradients")
    ops.add_argument("--op", help="only this op")
    ops.add_argument("--json", action="store_true", help="as JSON (a list of ops; one object with --op)")
    ops.set_defaults(fn=cmd_ops)
    new = sub.add_parser("new-backend", help="write a complete backend distribution (loads and passes conformance)")
    new.add_argument("name", help="the backend's name: the device prefix (NAME:0)")
    new.add_argument("--dir", help="where to write it (default ./opdispatch-NAME; must be new or empty)")
    new.set_defaults(fn=cmd_new_backend)
    for name, ep in sorted(commands.items()):
        sub.add_parser(name, help=f"from {ep.dist.name if ep.dist else ep.value} (opdispatch {name} --help)")
    if "conformance" not in commands:
        sub.add_parser("conformance", help=f"not installed: {CONFORMANCE_HINT}")
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except OpDispatchError as exc:
        print(f"opdispatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
