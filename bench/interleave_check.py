"""Does alternating runtimes' repetitions distort their timings? bench/perf.py's schedules compared.

Run: python bench/interleave_check.py [--rows conv_b,conv_c,maxpool_112,matmul] [--peers od-graph,torch,onnxruntime]
         [--variants alone,lockstep,lockstep:gap=100,...] [--cycles 4] [--rounds 5] [--json out.json]

A variant is a schedule (bench/perf.py's workers and workloads): ``alone``, each peer's repetitions
back to back in its own process (no other runtime between two of its calls); ``lockstep``, one
process per peer, one repetition each in turn; ``inprocess``, the same alternation with every peer in
one process; ``:gap=MS`` sleeps between two repetitions; ``:nospin`` starts the workers with
perf.NO_SPIN (idle thread pools sleep at once); ``:settle`` waits after each repetition until that
worker's process uses no CPU (perf.wait_idle). Every variant's workers stay alive for the whole run
and the variants take turns within each row, ``--rounds`` repetitions per peer at a time, in an order
reversed every cycle, so a drift in the machine's load spreads over all of them. Printed per row and
peer: each variant's median ms and its ratio to the first variant's; a ratio well above 1 means that
schedule slows the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from perf import Bench, Settings, workloads  # noqa: E402


def variant_settings(variant: str, rounds: int) -> tuple[str, Settings]:
    """``mode[:gap=MS][:nospin][:settle]`` (e.g. lockstep:gap=50, inprocess:nospin) -> its mode and settings."""
    mode, *opts = variant.split(":")
    settings = Settings(rounds=rounds, min_rounds=rounds, row_budget_s=1e9, warmup=2, peak_n=0)
    for opt in opts:
        if opt == "nospin":
            settings.no_spin = True
        elif opt == "settle":
            settings.settle = True
        elif opt.startswith("gap="):
            settings.gap_ms = float(opt[4:])
        else:
            raise SystemExit(f"variant {variant!r}: unknown option {opt!r}; allowed: gap=MS, nospin, settle")
    return mode, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="conv_b,conv_c,maxpool_112,matmul")
    parser.add_argument("--peers", default="od-graph,torch,onnxruntime")
    parser.add_argument("--variants", default="alone,lockstep,inprocess,lockstep:gap=100,lockstep:nospin",
                        help="mode[:gap=MS][:nospin], comma-separated; the first is the baseline")
    parser.add_argument("--cycles", type=int, default=4, help="turns of every variant per row (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions per peer in one turn (default 5)")
    parser.add_argument("--tiny", action="store_true", help="small shapes (for a smoke test)")
    parser.add_argument("--json")
    args = parser.parse_args()
    names = args.rows.split(",")
    rows = [w for w in workloads(tiny=args.tiny, model_batches=()) if w.name in names]
    peers = [p for p in args.peers.split(",") if p]
    variants = [v for v in args.variants.split(",") if v]
    parsed = {v: variant_settings(v, args.rounds) for v in variants}
    times: dict[tuple, list[float]] = {}

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="interleave-") as tmp:
        benches: dict[tuple, Bench] = {}
        for mode, settings in parsed.values():
            key = ("inprocess" if mode == "inprocess" else "lockstep", settings.no_spin)
            if key not in benches:
                benches[key] = Bench(peers, key[0], settings, tmp, False, log)
        try:
            for wl in rows:
                skipped: dict[str, str] = {}
                ready = {key: b.prepare(wl, None, skipped)[0] for key, b in benches.items()}
                for cycle in range(args.cycles):
                    for v in (variants if cycle % 2 == 0 else variants[::-1]):
                        mode, settings = parsed[v]
                        key = ("inprocess" if mode == "inprocess" else "lockstep", settings.no_spin)
                        got = benches[key].time_rounds(ready[key], skipped, args.rounds, args.rounds, 1e9,
                                                       alone=mode == "alone", gap_ms=settings.gap_ms)
                        for p, ms in got.items():
                            times.setdefault((wl.name, p, v), []).extend(ms)
                log(f"{wl.name}: " + "; ".join(f"{v} " + ", ".join(
                    f"{p} {np.median(times[(wl.name, p, v)]):.3g}" for p in peers if (wl.name, p, v) in times)
                    for v in variants) + (f" (skipped: {skipped})" if skipped else ""))
                for key, b in benches.items():
                    b.release(ready[key], skipped)
        finally:
            for b in benches.values():
                b.close()
    print(f"median ms over {args.cycles} turns of {args.rounds} repetitions per variant, the variants interleaved "
          f"within each row; (x) = ratio to {variants[0]}; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    width = max(22, max(len(v) for v in variants) + 2)
    print(f"{'row':<12} {'peer':<12}" + "".join(f"{v:>{width}}" for v in variants))
    out = []
    for wl in rows:
        for p in peers:
            med = {v: float(np.median(times[(wl.name, p, v)])) for v in variants if (wl.name, p, v) in times}
            if not med:
                continue
            base = med.get(variants[0])
            cells = [f"{med[v]:9.3g} ({med[v] / base:4.2f}x)" if v in med and base
                     else f"{med.get(v, float('nan')):9.3g}" for v in variants]
            print(f"{wl.name:<12} {p:<12}" + "".join(f"{c:>{width}}" for c in cells))
            out.append({"row": wl.name, "peer": p, "median_ms": med,
                        "ms": {v: times[(wl.name, p, v)] for v in variants if (wl.name, p, v) in times}})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
