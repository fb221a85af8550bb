"""Sliding-window geometry shared by convolution and pooling: padded buffers, per-tap strided
views, im2col and its adjoint col2im, and the per-tap valid ranges with which pooling reads its
unpadded input.

Everything is built from strided slices (one per kernel tap), which CuPy and NumPy implement
identically and which run as plain copy/add kernels on the GPU: no scatter, no atomics.
"""

from __future__ import annotations

from typing import Iterator

from opdispatch.shapes import Pads, Pair

from ..xp import Array, array_module


def span(out: int, k: int, stride: int, dilation: int) -> int:
    """Input extent that ``out`` windows of ``k`` taps need: ``(out-1)*stride + dilation*(k-1) + 1``."""
    return (out - 1) * stride + dilation * (k - 1) + 1


def padded(x: Array, pads: Pads, out_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair,
           fill: float) -> Array:
    """``x`` (N, C, H, W) inside a buffer filled with ``fill``: the declared padding, plus the
    overhang of a ceil_mode last window at the bottom/right."""
    xp = array_module(x)
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = pads
    hp = max(h + pt + pb, span(out_hw[0], kernel[0], stride[0], dilation[0]))
    wp = max(w + pl + pr, span(out_hw[1], kernel[1], stride[1], dilation[1]))
    if (hp, wp) == (h, w):
        return x
    buf = xp.full((n, c, hp, wp), fill, dtype=x.dtype)
    buf[:, :, pt:pt + h, pl:pl + w] = x
    return buf


def taps(kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Iterator[tuple[int, int, slice, slice]]:
    """For each kernel tap (i, j) in row-major order: (i, j, rows, cols), the strided slices of the
    padded input that the tap reads over every output position."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield (i, j, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                   slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def im2col(xpad: Array, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Array:
    """Columns (C, KH, KW, N, OH, OW) of the padded input (N, C, Hp, Wp): a GEMM-ready layout whose
    reshape to (C*KH*KW, N*OH*OW) needs no copy."""
    xp = array_module(xpad)
    n, c = xpad.shape[:2]
    cols = xp.empty((c, kernel[0], kernel[1], n) + tuple(out_hw), dtype=xpad.dtype)
    chw_first = xpad.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp), a view
    for i, j, rows, cols_ in taps(kernel, stride, dilation, out_hw):
        cols[:, i, j] = chw_first[:, :, rows, cols_]
    return cols


def col2im(cols: Array, padded_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Array:
    """The adjoint of `im2col`: add the columns (C, KH, KW, N, OH, OW) back into a zeroed padded
    input, returned as (N, C, Hp, Wp)."""
    xp = array_module(cols)
    c, _, _, n, oh, ow = cols.shape
    out = xp.zeros((c, n) + tuple(padded_hw), dtype=cols.dtype)
    for i, j, rows, cols_ in taps(kernel, stride, dilation, (oh, ow)):
        out[:, :, rows, cols_] += cols[:, i, j]
    return out.transpose(1, 0, 2, 3)


def crop(xpad: Array, pads: Pads, hw: Pair) -> Array:
    """The (H, W) input region of a padded (N, C, Hp, Wp) array, as a contiguous array."""
    xp = array_module(xpad)
    (pt, _), (pl, _) = pads
    return xp.ascontiguousarray(xpad[:, :, pt:pt + hw[0], pl:pl + hw[1]])
