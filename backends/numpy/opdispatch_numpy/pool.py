"""Pooling through strided slices of the padded input, one pass per kernel tap."""

from __future__ import annotations

import numpy as np
from opdispatch.shapes import output_hw

from .windows import pad_hw, tap


def _overhang(hw, kernel, stride, dilation, pads, out_hw):
    """Rows/columns ceil_mode's last window reaches past the padded input."""
    return tuple(max((out_hw[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1
                     - (hw[a] + pads[a][0] + pads[a][1]), 0) for a in (0, 1))


def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    hw = x.shape[2:]
    out_hw = output_hw(hw, kernel_size, stride, padding, dilation, ceil_mode)
    xp = pad_hw(x, padding, -np.inf, _overhang(hw, kernel_size, stride, dilation, padding, out_hw))
    out = tap(xp, 0, 0, stride, dilation, out_hw).copy()
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            if i or j:
                np.maximum(out, tap(xp, i, j, stride, dilation, out_hw), out=out)
    return out


def _counts(size, k, stride, pad_lo, pad_hi, out, include_pad):
    """Per output position along one axis: how many cells of its window count in the divisor."""
    start = np.arange(out) * stride - pad_lo
    end = start + k
    lo, hi = (-pad_lo, size + pad_hi) if include_pad else (0, size)
    return np.minimum(end, hi) - np.maximum(start, lo)


def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    hw = x.shape[2:]
    one = (1, 1)
    out_hw = output_hw(hw, kernel_size, stride, padding, one, ceil_mode)
    xp = pad_hw(x, padding, 0.0, _overhang(hw, kernel_size, stride, one, padding, out_hw))
    out = tap(xp, 0, 0, stride, one, out_hw).copy()
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            if i or j:
                out += tap(xp, i, j, stride, one, out_hw)
    ch = _counts(hw[0], kernel_size[0], stride[0], *padding[0], out_hw[0], count_include_pad)
    cw = _counts(hw[1], kernel_size[1], stride[1], *padding[1], out_hw[1], count_include_pad)
    out /= np.outer(ch, cw).astype(x.dtype)
    return out
