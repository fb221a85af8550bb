"""Sliding-window geometry shared by convolution and pooling: padded buffers, per-tap strided
views, im2col and its adjoint col2im, and the per-tap valid ranges with which pooling reads its
unpadded input.

Everything is built from strided slices (one per kernel tap), which CuPy and NumPy implement
identically and which run as plain copy/add kernels on the GPU: no scatter, no atomics.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..xp import Array, array_module

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]


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


def tap_range(size: int, out: int, offset: int, stride: int) -> Optional[tuple[slice, slice]]:
    """Along one axis, for a kernel tap that output ``a`` reads at input index ``a * stride + offset``
    (``offset``: the tap's offset in the window minus the leading padding): the slice of outputs whose
    read lands inside the input of ``size``, and the input slice it reads for them; None when every
    read of the tap lands in the padding (or past the input, ceil_mode's overhang)."""
    a0 = max(0, -(offset // stride))                  # the first a with a * stride + offset >= 0
    a1 = min(out, (size - 1 - offset) // stride + 1)  # past the last a with a * stride + offset < size
    if a1 <= a0:
        return None
    start = a0 * stride + offset
    return slice(a0, a1), slice(start, start + (a1 - a0 - 1) * stride + 1, stride)


def valid_taps(hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair
               ) -> Iterator[tuple[int, int, tuple, tuple]]:
    """For each kernel tap (i, j), row-major, that reads some real input element: ``(i, j, out_index,
    in_index)``, the index of the (N, C, OH, OW) outputs whose tap reads inside the unpadded input and of
    the (N, C, H, W) input elements it reads for them (strided slices of the same shape). Taps that read
    padding are left out: pooling never materialises a padded copy of its input."""
    rows = [tap_range(hw[0], out_hw[0], i * dilation[0] - padding[0][0], stride[0]) for i in range(kernel[0])]
    cols = [tap_range(hw[1], out_hw[1], j * dilation[1] - padding[1][0], stride[1]) for j in range(kernel[1])]
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            if r is not None and q is not None:
                yield i, j, (Ellipsis, r[0], q[0]), (Ellipsis, r[1], q[1])


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
