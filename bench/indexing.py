"""Indexing a small tensor: t[0], t[1:3, ::2], t[[0, 2]] and t[mask] on a (4, 4) float32 tensor beside
NumPy's a[...] on the same array, in one run.

Run: python bench/indexing.py [--device numpy:0] [--repeat 5] [--number 20000]
Target (issue 14): basic indexing (ints, slices) costs no more than a few microseconds eagerly.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

import opdispatch as od


def best_us(fn, number: int, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="numpy:0")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    t = od.tensor(a, device=args.device)
    mask = a > 7
    keys = [("[0]", 0), ("[1:3, ::2]", (slice(1, 3), slice(None, None, 2))), ("[..., None, -1]", (Ellipsis, None, -1)),
            ("[[0, 2]]", [0, 2]), ("[mask]", mask)]
    print(f"{'key':<20}{'numpy us':>10}{'od us':>10}   ({args.device})")
    for label, key in keys:
        number = args.number if label != "[mask]" else args.number // 10
        np_us = best_us(lambda: a[key], number, args.repeat)
        od_us = best_us(lambda: t[key], number, args.repeat)
        print(f"{label:<20}{np_us:>10.3f}{od_us:>10.3f}")


if __name__ == "__main__":
    main()
