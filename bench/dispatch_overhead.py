"""Eager dispatch overhead: od.add on two (2, 2) float32 tensors vs np.add on the same arrays.

Run: python bench/dispatch_overhead.py [--repeat 7] [--number 200000]
Prints microseconds per call of each and the overhead (od - numpy) and ratio; both in this run.
Target (issue 2): od.add costs at most 1 us more per call than np.add.
"""

from __future__ import annotations

import argparse
import json
import timeit

import numpy as np

import opdispatch as od


def best_us(fn, number: int, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    a = np.ones((2, 2), np.float32)
    b = np.full((2, 2), 2.0, np.float32)
    ta, tb = od.tensor(a), od.tensor(b)
    rows = {
        "np.add": best_us(lambda: np.add(a, b), args.number, args.repeat),
        "od.add": best_us(lambda: od.add(ta, tb), args.number, args.repeat),
        "tensor + tensor": best_us(lambda: ta + tb, args.number, args.repeat),
        "od.relu": best_us(lambda: od.relu(ta), args.number, args.repeat),
        "np.maximum(x, 0)": best_us(lambda: np.maximum(a, 0), args.number, args.repeat),
        "od.add(tensor, 1.0) (scalar fast path)": best_us(lambda: od.add(ta, 1.0), args.number // 10, args.repeat),
        "od.sum (general path)": best_us(lambda: od.sum(ta), args.number // 10, args.repeat),
    }
    base = rows["np.add"]
    print(f"{'call':<38}{'us/call':>10}{'vs np.add':>12}")
    for name, us in rows.items():
        print(f"{name:<38}{us:>10.3f}{us / base:>11.2f}x")
    overhead = rows["od.add"] - base
    print(f"\nod.add overhead over np.add: {overhead:.3f} us per call (target <= 1 us): "
          f"{'met' if overhead <= 1.0 else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"us_per_call": rows, "od_add_overhead_us": overhead}, fh, indent=2)


if __name__ == "__main__":
    main()
