"""matmul on OpenBLAS (NumPy) and on oneDNN, alone and right after oneDNN convolutions, in one process.

Run: python bench/onednn_matmul_context.py [--reps 40]

Why the oneDNN provider serves every product from ``MIN_MACS`` (``opdispatch_onednn.linalg``): once
OpenBLAS goes multi-threaded, its pool and oneDNN's OpenMP pool take turns waiting for a time slice on
the 2 cores (a spinning idle thread holds the other core). Each row prints the median ms of NumPy's
``np.matmul`` and the provider's kernel, alone (back to back) and after three oneDNN convolutions (as a
model's classifier runs after its last conv), and the paired ratio numpy / onednn after the convs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from opdispatch_onednn import conv, linalg

SHAPES = [(1, 512, 1000), (1, 1280, 1000), (64, 64, 64), (32, 128, 128), (128, 128, 128), (16, 256, 256)]
GEOMETRY = {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1), "groups": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 56, 56, 144)).astype(np.float32).transpose(0, 3, 1, 2)
    w, b = rng.standard_normal((24, 144, 1, 1)).astype(np.float32), rng.standard_normal(24).astype(np.float32)

    def times(mm, a, bb, after_convs: bool) -> list[float]:
        out = []
        for _ in range(args.reps):
            if after_convs:
                for _ in range(3):
                    conv.conv2d(x, w, b, layout="channels_last", **GEOMETRY)
            t = time.perf_counter()
            mm(a, bb)
            out.append(time.perf_counter() - t)
        return out

    print(f"{'m x k @ k x n':>20} {'MACs':>9} | alone: numpy  onednn | after convs: numpy  onednn  numpy/onednn")
    for m, k, n in SHAPES:
        a, bb = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
        alone = [np.median(times(fn, a, bb, False)) * 1e3 for fn in (np.matmul, linalg.matmul)]
        nb, ob = times(np.matmul, a, bb, True), times(linalg.matmul, a, bb, True)
        ratio = np.median(np.array(nb) / np.array(ob))
        print(f"{f'{m}x{k} @ {k}x{n}':>20} {m * k * n:>9} | {alone[0]:12.3f} {alone[1]:7.3f} | "
              f"{np.median(nb) * 1e3:18.3f} {np.median(ob) * 1e3:7.3f} {ratio:12.1f}x")


if __name__ == "__main__":
    main()
