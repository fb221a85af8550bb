"""``opdispatch-conformance``: the conformance suite's command line (also ``opdispatch conformance``,
which delegates here)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import opdispatch as od
from opdispatch import Device, OpDispatchError

from . import report
from .cases import case_from_json
from .fleet import DEFAULT_TASK_TIMEOUT_S
from .suite import DTYPE_CHOICES, collect_cases, dtypes_argument, run_device


def run(args: argparse.Namespace) -> int:
    """Run the conformance suite; exit 1 when a supported case fails (or, with --ray, a column is lost)."""
    if args.ray is not None:
        from . import fleet

        return report_runs(args, fleet.run_command(args))
    if args.all:
        devices = od.devices()
        if not devices:
            print("opdispatch: error: no device is available (see `opdispatch devices`)", file=sys.stderr)
            return 2
    else:
        devices = [Device(d) for d in (args.device or ["numpy:0"])]
    for dev in devices:
        od.device_info(dev)  # an unknown or unavailable device fails here, with the reason
    if args.models is not None:
        return run_models_command(args, devices)
    if args.mode is None:
        args.mode = "eager"
    ops = args.ops.split(",") if args.ops else None
    dtypes = args.dtypes.split(",") if args.dtypes else None
    notes: list[str] = []
    if args.case:
        cases = [case_from_json(args.case)]
    else:
        cases = collect_cases(ops, random_per_op=args.random, seed=args.seed, onnx=not args.no_onnx, notes=notes)
        if args.only:
            cases = [c for c in cases if c.name in set(args.only)]
            if not cases:
                print(f"opdispatch: error: no case named {args.only}", file=sys.stderr)
                return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"conformance: {len(cases)} cases on {', '.join(map(str, devices))} ({args.mode} mode)", file=sys.stderr)
    modes = ["eager", "graph"] if args.mode == "both" else [args.mode]
    runs = {str(dev) if len(modes) == 1 else f"{dev} ({mode})":
            run_device(dev, cases, dtypes, mode, gradients=args.gradients) for dev in devices for mode in modes}
    return report_runs(args, runs)


def report_runs(args: argparse.Namespace, runs: dict) -> int:
    """Print each run's table and failures, the matrix, write the reports; exit 1 when a case failed or
    a run was lost."""
    failed = 0
    lost = [label for label, run in runs.items() if run.get("lost")]
    for label, run in runs.items():
        if run.get("lost"):
            print(f"\n== {label} ({run['backend']} {run['version']}): LOST: {run['lost']} ==")
            continue
        print(f"\n== {label} ({run['backend']} {run['version']}) ==")
        print(report.table(report.summarize(run["results"])))
        text = report.failures_text(run["results"], limit=args.show_failures, tracebacks=args.tracebacks)
        if text:
            print("\n" + text)
        failed += sum(r.status == "failed" for r in run["results"])
    if len(runs) > 1:
        print("\n" + report.matrix(runs))
    if args.report:
        report.write_json(report.json_report(runs), args.report)
        print(f"\nJSON report: {args.report}")
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(report.markdown(runs))
        print(f"Markdown report: {args.markdown}")
    tail = f", {len(lost)} lost: {', '.join(lost)}" if lost else ""
    print(f"\n{'FAILED' if failed or lost else 'passed'}: {failed} failed case(s) across {len(runs)} device(s){tail}")
    return 1 if failed or lost else 0



def run_models_command(args: argparse.Namespace, devices: list) -> int:
    """``--models [PATH ...]``: whole models per device against the float64 reference; exit 1 when one
    fails."""
    from . import models

    paths = list(args.models) or models.light_models()
    if not paths:
        print("opdispatch: error: no model given and the onnx package (whose light models are the default "
              "set) is not installed: pip install onnx", file=sys.stderr)
        return 2
    modes = ["eager", "graph"] if args.mode in (None, "both") else [args.mode]
    print(f"conformance: {len(paths)} model(s) on {', '.join(map(str, devices))} ({', '.join(modes)}), "
          f"seed {args.seed}", file=sys.stderr)
    results = models.run_models(paths, devices, modes, seed=args.seed, out=sys.stderr)
    print("\n" + models.table(results))
    bad = [r for r in results if r.status != models.PASSED]
    if args.report:
        report.write_json({"format": report.FORMAT, "version": report.VERSION, "kind": "models", "seed": args.seed,
                           "models": [r.as_json() for r in results]}, args.report)
        print(f"\nJSON report: {args.report}")
    print(f"\n{'FAILED' if bad else 'passed'}: {len(bad)} of {len(results)} model run(s) failed")
    return 1 if bad else 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the conformance command."""
    conf = argparse.ArgumentParser(prog="opdispatch conformance",
                                   description="check devices against the reference, with measured errors")
    where = conf.add_mutually_exclusive_group()
    where.add_argument("--device", action="append", help="device to check (repeatable; default numpy:0)")
    where.add_argument("--all", action="store_true", help="every available device")
    conf.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                      help="run on every node of the Ray cluster at ADDRESS (host:port or 'auto'; none: a new "
                           "local one), one task per node and device, one merged report (pip install "
                           "'opdispatch[ray]')")
    conf.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT_S, metavar="SECONDS",
                      help="with --ray: how long one (node, device) task may run once started; past it the task "
                           "is cancelled and its column marked lost, the others kept (default "
                           f"{DEFAULT_TASK_TIMEOUT_S:g})")
    conf.add_argument("--ops", help="comma-separated op names (default: every op)")
    conf.add_argument("--dtypes", type=dtypes_argument,
                      help=f"comma-separated dtypes among {', '.join(DTYPE_CHOICES)} (default: every float dtype "
                           f"the device supports; int and bool ones run the cases of the ops taking them, exactly)")
    conf.add_argument("--mode", choices=["eager", "graph", "both"], default=None,
                      help="frontend to run the cases through: eager ops, od.function graphs, or both "
                           "(default eager; with --models, both)")
    conf.add_argument("--models", nargs="*", metavar="PATH",
                      help="check whole ONNX models instead of ops (default set: the light models of the onnx "
                           "package, with seeded weights) against the float64 reference")
    conf.add_argument("--gradients", choices=["yes", "no", "only"], default="yes",
                      help="also check each differentiable case's gradient against the reference backward "
                           "(default yes; 'only' skips the forward checks)")
    conf.add_argument("--random", type=int, default=10, help="seeded random cases per op (default 10)")
    conf.add_argument("--seed", type=int, default=0, help="seed of the random cases")
    conf.add_argument("--no-onnx", action="store_true", help="leave out the ONNX-derived cases")
    conf.add_argument("--case", help="run one case given as JSON (the reproduction lines print this)")
    conf.add_argument("--only", action="append", help="run only the case with this name (repeatable)")
    conf.add_argument("--report", help="write the JSON report here (a name ending in .gz: gzip-compressed, about "
                                        "15x smaller)")
    conf.add_argument("--markdown", help="write the Markdown report here")
    conf.add_argument("--show-failures", type=int, default=20, help="failures to print (default 20)")
    conf.add_argument("--tracebacks", action="store_true", help="print the traceback of each failure")
    return conf


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``opdispatch-conformance`` and of ``opdispatch conformance``."""
    args = parser().parse_args(argv)
    try:
        return run(args)
    except OpDispatchError as exc:
        print(f"opdispatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
