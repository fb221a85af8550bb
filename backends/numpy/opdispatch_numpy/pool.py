"""Pooling and its gradients through strided slices of the padded input, one pass per kernel tap."""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import output_hw

from .elementwise import select
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


def _crop(xp, pads, hw):
    """A fresh copy of the interior of padded ``xp`` (never ``xp`` itself: it may be scratch)."""
    (pt, _), (pl, _) = pads
    return np.array(xp[:, :, pt:pt + hw[0], pl:pl + hw[1]], order="C", copy=True)


def _tiled_max_pool_backward(x, dy, kernel_size, out_hw):
    """Non-overlapping, unpadded windows: every covered input cell belongs to one window, so each
    tap writes its share of ``dy`` (where it holds the window's first maximum) straight into place."""
    (kh, kw), (oh, ow) = kernel_size, out_hw
    taps = [(i, j) for i in range(kh) for j in range(kw)]  # row-major: the first maximum wins ties
    m = x[:, :, 0:oh * kh:kh, 0:ow * kw:kw].copy()
    for i, j in taps[1:]:
        np.maximum(m, x[:, :, i:oh * kh:kh, j:ow * kw:kw], out=m)
    nan_m = np.isnan(m)
    any_nan = bool(nan_m.any())
    dx = np.empty_like(x)
    dx[:, :, oh * kh:] = 0  # rows and columns no window covers (floor mode)
    dx[:, :, :oh * kh, ow * kw:] = 0
    taken = None
    for i, j in taps:
        xt = x[:, :, i:oh * kh:kh, j:ow * kw:kw]
        hit = xt == m
        if any_nan:
            hit |= np.isnan(xt) & nan_m
        if taken is None:
            taken = hit.copy()
        else:
            hit &= ~taken
            taken |= hit
        dx[:, :, i:oh * kh:kh, j:ow * kw:kw] = select(hit, dy)
    return dx


def max_pool2d_backward(x, dy, *, kernel_size, stride, padding, dilation, ceil_mode):
    hw = x.shape[2:]
    out_hw = dy.shape[2:]
    extra = _overhang(hw, kernel_size, stride, dilation, padding, out_hw)
    if stride == kernel_size and dilation == (1, 1) and padding == ((0, 0), (0, 0)) and extra == (0, 0):
        return _tiled_max_pool_backward(x, dy, kernel_size, out_hw)
    xp = pad_hw(x, padding, -np.inf, extra)
    real = pad_hw(np.ones((1, 1) + hw, dtype=bool), padding, False, extra)
    taps = [(i, j) for i in range(kernel_size[0]) for j in range(kernel_size[1])]  # row-major
    out = tap(xp, 0, 0, stride, dilation, out_hw).copy()
    for i, j in taps[1:]:
        np.maximum(out, tap(xp, i, j, stride, dilation, out_hw), out=out)
    nan_out = np.isnan(out)
    any_nan = bool(nan_out.any())
    taken = np.zeros(out.shape, dtype=bool)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    for i, j in taps:
        xt = tap(xp, i, j, stride, dilation, out_hw)
        hit = xt == out
        if any_nan:
            hit |= np.isnan(xt) & nan_out
        hit &= tap(real, i, j, stride, dilation, out_hw)
        hit &= ~taken
        taken |= hit
        view = tap(dxp, i, j, stride, dilation, out_hw)
        view += select(hit, dy)
    return _crop(dxp, padding, hw)


def avg_pool2d_backward(dy, *, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    n, c, h, w = input_shape
    out_hw = dy.shape[2:]
    one = (1, 1)
    ch = _counts(h, kernel_size[0], stride[0], *padding[0], out_hw[0], count_include_pad)
    cw = _counts(w, kernel_size[1], stride[1], *padding[1], out_hw[1], count_include_pad)
    g = dy / np.outer(ch, cw).astype(dy.dtype)
    eh, ew = _overhang((h, w), kernel_size, stride, one, padding, out_hw)
    (pt, pb), (pl, pr) = padding
    dxp = np.zeros((n, c, h + pt + pb + eh, w + pl + pr + ew), dtype=dy.dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            view = tap(dxp, i, j, stride, one, out_hw)
            view += g
    return _crop(dxp, padding, (h, w))


KERNELS: dict[str, Callable] = {
    "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d,
    "max_pool2d_backward": max_pool2d_backward, "avg_pool2d_backward": avg_pool2d_backward,
}
