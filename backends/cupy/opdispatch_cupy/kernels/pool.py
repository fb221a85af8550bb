"""max_pool2d and avg_pool2d with their gradients: one strided pass per window tap.

Forward passes keep a running maximum / sum over the KH*KW taps (no (taps, ...) stack). The
backward passes add each tap's share into a padded gradient buffer through the same strided
views, so overlapping windows accumulate without scatter or atomics.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import output_hw

from ..xp import Array, array_module, host_to
from .windows import Pads, Pair, crop, padded, span, taps


def _out_hw(x_hw: Pair, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair, ceil_mode: bool) -> Pair:
    return output_hw(tuple(x_hw), kernel, stride, padding, dilation, ceil_mode)  # type: ignore[arg-type]


def max_pool2d(x: Array, *, kernel_size: Pair, stride: Pair, padding: Pads, dilation: Pair,
               ceil_mode: bool) -> Array:
    """Maximum over each (dilated) window; padding is -inf; NaN propagates."""
    xp = array_module(x)
    out_hw = _out_hw(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    xpad = padded(x, padding, out_hw, kernel_size, stride, dilation, -np.inf)
    out = None
    for _, _, rows, cols in taps(kernel_size, stride, dilation, out_hw):
        view = xpad[:, :, rows, cols]
        out = view.copy() if out is None else xp.maximum(out, view, out=out)
    return out


def _valid_mask(xp, hw: Pair, padding: Pads, padded_hw: Pair, dtype) -> Array:
    """1 where the padded buffer holds a real input element, else 0, shaped (1, 1, Hp, Wp)."""
    mask = xp.zeros((1, 1) + tuple(padded_hw), dtype=dtype)
    mask[:, :, padding[0][0]:padding[0][0] + hw[0], padding[1][0]:padding[1][0] + hw[1]] = 1
    return mask


def max_pool2d_backward(x: Array, dy: Array, *, kernel_size: Pair, stride: Pair, padding: Pads,
                        dilation: Pair, ceil_mode: bool) -> Array:
    """Each window's dy goes to its first maximal real input element (row-major; NaN counts as
    maximal); windows that see only padding pass nothing."""
    xp = array_module(x)
    out_hw = (int(dy.shape[2]), int(dy.shape[3]))
    xpad = padded(x, padding, out_hw, kernel_size, stride, dilation, -np.inf)
    real = _valid_mask(xp, x.shape[2:], padding, xpad.shape[2:], bool)
    windows = list(taps(kernel_size, stride, dilation, out_hw))
    peak = None
    for _, _, rows, cols in windows:
        peak = xpad[:, :, rows, cols].copy() if peak is None else xp.maximum(peak, xpad[:, :, rows, cols])
    peak_nan = xp.isnan(peak)
    zero = xp.zeros((), dtype=dy.dtype)
    pending = xp.ones(dy.shape, dtype=bool)  # windows whose gradient is not yet placed
    dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
    for _, _, rows, cols in windows:
        vals = xpad[:, :, rows, cols]
        hit = pending & real[:, :, rows, cols] & ((vals == peak) | (xp.isnan(vals) & peak_nan))
        dxpad[:, :, rows, cols] += xp.where(hit, dy, zero)
        pending &= ~hit
    return crop(dxpad, padding, x.shape[2:])


def _divisor(hw: Pair, kernel: Pair, stride: Pair, padding: Pads, out_hw: Pair, count_include_pad: bool
             ) -> np.ndarray:
    """(OH, OW) divisors on the host: the window clipped to the padded input, or to the real input."""
    per_axis = []
    for axis in (0, 1):
        lo_pad, hi_pad = padding[axis]
        start = np.arange(out_hw[axis]) * stride[axis] - lo_pad
        lo, hi = (-lo_pad, hw[axis] + hi_pad) if count_include_pad else (0, hw[axis])
        per_axis.append(np.minimum(start + kernel[axis], hi) - np.maximum(start, lo))
    return np.outer(per_axis[0], per_axis[1]).astype(np.float64)


def avg_pool2d(x: Array, *, kernel_size: Pair, stride: Pair, padding: Pads, ceil_mode: bool,
               count_include_pad: bool) -> Array:
    """Mean over each window, divided as `_divisor` says."""
    xp = array_module(x)
    dil = (1, 1)
    out_hw = _out_hw(x.shape[2:], kernel_size, stride, padding, dil, ceil_mode)
    xpad = padded(x, padding, out_hw, kernel_size, stride, dil, 0.0)
    total = None
    for _, _, rows, cols in taps(kernel_size, stride, dil, out_hw):
        view = xpad[:, :, rows, cols]
        total = view.copy() if total is None else xp.add(total, view, out=total)
    div = _divisor(x.shape[2:], kernel_size, stride, padding, out_hw, count_include_pad)
    return total / host_to(xp, div, x)


def avg_pool2d_backward(dy: Array, *, input_shape: tuple, kernel_size: Pair, stride: Pair, padding: Pads,
                        ceil_mode: bool, count_include_pad: bool) -> Array:
    """Each window's dy over its divisor, added to every element of the window (padding cropped)."""
    xp = array_module(dy)
    n, c, h, w = input_shape
    dil = (1, 1)
    out_hw = (int(dy.shape[2]), int(dy.shape[3]))
    hp = max(h + padding[0][0] + padding[0][1], span(out_hw[0], kernel_size[0], stride[0], 1))
    wp = max(w + padding[1][0] + padding[1][1], span(out_hw[1], kernel_size[1], stride[1], 1))
    share = dy / host_to(xp, _divisor((h, w), kernel_size, stride, padding, out_hw, count_include_pad), dy)
    dxpad = xp.zeros((n, c, hp, wp), dtype=dy.dtype)
    for _, _, rows, cols in taps(kernel_size, stride, dil, out_hw):
        dxpad[:, :, rows, cols] += share
    return crop(dxpad, padding, (h, w))


KERNELS: dict[str, Callable[..., Array]] = {
    "max_pool2d": max_pool2d, "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d, "avg_pool2d_backward": avg_pool2d_backward,
}
