"""Pooling and its gradients, one strided pass per kernel tap straight over the unpadded input: each tap
reads only the outputs whose window cell lands inside the input (`valid_taps`), the padding being the
value the output starts from (-inf for the maximum, 0 for the sum), so no padded copy of the input is
made (the forward passes allocate the output only)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import output_hw, valid_taps

from .elementwise import select


def _whole(index, out_hw) -> bool:
    """Whether a tap's output index covers every output position (no padding read)."""
    return index[1] == slice(0, out_hw[0]) and index[2] == slice(0, out_hw[1])


def _max_over_taps(x, taps, out_hw):
    """The maximum over the taps (-inf where a window holds padding only), taps in row-major order."""
    out = None
    for _, _, o, i in taps:
        if out is None:
            if _whole(o, out_hw):
                out = x[i].copy()
                continue
            out = np.full(x.shape[:2] + tuple(out_hw), -np.inf, dtype=x.dtype)  # padding is -inf
        view = out[o]
        np.maximum(view, x[i], out=view)
    return np.full(x.shape[:2] + tuple(out_hw), -np.inf, dtype=x.dtype) if out is None else out


def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    hw = x.shape[2:]
    out_hw = output_hw(hw, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_over_taps(x, list(valid_taps(hw, out_hw, kernel_size, stride, padding, dilation)), out_hw)


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
    out = None
    for _, _, o, i in valid_taps(hw, out_hw, kernel_size, stride, padding, one):
        if out is None:
            if _whole(o, out_hw):
                out = x[i].copy()
                continue
            out = np.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)  # padding adds 0
        out[o] += x[i]
    if out is None:  # unreachable (every window covers some input), kept for safety
        out = np.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    ch = _counts(hw[0], kernel_size[0], stride[0], *padding[0], out_hw[0], count_include_pad)
    cw = _counts(hw[1], kernel_size[1], stride[1], *padding[1], out_hw[1], count_include_pad)
    out /= np.outer(ch, cw).astype(x.dtype)
    return out


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
    taps = list(valid_taps(hw, out_hw, kernel_size, stride, padding, dilation))  # row-major: the first maximum
    if stride == kernel_size and dilation == (1, 1) and padding == ((0, 0), (0, 0)) \
            and all(out_hw[a] * kernel_size[a] <= hw[a] for a in (0, 1)):  # no ceil_mode overhang
        return _tiled_max_pool_backward(x, dy, kernel_size, out_hw)
    out = _max_over_taps(x, taps, out_hw)
    nan_out = np.isnan(out)
    any_nan = bool(nan_out.any())
    taken = np.zeros(out.shape, dtype=bool)
    dx = np.zeros(x.shape, dtype=x.dtype)
    for _, _, o, i in taps:  # padding is never a candidate: only the taps inside the input are visited
        xt = x[i]
        hit = xt == out[o]
        if any_nan:
            hit |= np.isnan(xt) & nan_out[o]
        done = taken[o]
        hit &= ~done
        done |= hit
        view = dx[i]
        view += select(hit, dy[o])
    return dx


def avg_pool2d_backward(dy, *, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    n, c, h, w = input_shape
    out_hw = dy.shape[2:]
    ch = _counts(h, kernel_size[0], stride[0], *padding[0], out_hw[0], count_include_pad)
    cw = _counts(w, kernel_size[1], stride[1], *padding[1], out_hw[1], count_include_pad)
    g = dy / np.outer(ch, cw).astype(dy.dtype)
    dx = np.zeros(input_shape, dtype=dy.dtype)
    for _, _, o, i in valid_taps((h, w), out_hw, kernel_size, stride, padding, (1, 1)):
        view = dx[i]
        view += g[o]
    return dx


KERNELS: dict[str, Callable] = {
    "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d,
    "max_pool2d_backward": max_pool2d_backward, "avg_pool2d_backward": avg_pool2d_backward,
}
