"""max_pool2d and avg_pool2d with their gradients: one strided pass per window tap, straight over
the unpadded input.

Each tap reads only the outputs whose window cell lands inside the input (`valid_taps`); the padding
is the value the output starts from (-inf for the maximum, 0 for the sum), so no padded copy of the
input is made. Forward passes keep a running maximum / sum over the KH*KW taps (no (taps, ...)
stack). The backward passes add each tap's share into the input gradient through the same strided
views, so overlapping windows accumulate without scatter or atomics.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import Pads, Pair, output_hw, valid_taps

from ..xp import Array, array_module, host_to


def _out_hw(x_hw: Pair, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair, ceil_mode: bool) -> Pair:
    return output_hw(tuple(x_hw), kernel, stride, padding, dilation, ceil_mode)  # type: ignore[arg-type]


def _whole(index: tuple, out_hw: Pair) -> bool:
    """Whether a tap's output index covers every output position (no padding read)."""
    return bool(index[1] == slice(0, out_hw[0]) and index[2] == slice(0, out_hw[1]))


def _max_over_taps(x: Array, taps: list, out_hw: Pair) -> Array:
    """The maximum over the taps, row-major; -inf where a window holds padding only; NaN propagates."""
    xp = array_module(x)
    out = None
    for _, _, o, i in taps:
        if out is None:
            if _whole(o, out_hw):
                out = x[i].copy()
                continue
            out = xp.full(tuple(x.shape[:2]) + tuple(out_hw), -np.inf, dtype=x.dtype)
        view = out[o]
        xp.maximum(view, x[i], out=view)
    return xp.full(tuple(x.shape[:2]) + tuple(out_hw), -np.inf, dtype=x.dtype) if out is None else out


def max_pool2d(x: Array, *, kernel_size: Pair, stride: Pair, padding: Pads, dilation: Pair,
               ceil_mode: bool) -> Array:
    """Maximum over each (dilated) window; padding is -inf; NaN propagates."""
    hw = (int(x.shape[2]), int(x.shape[3]))
    out_hw = _out_hw(hw, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_over_taps(x, list(valid_taps(hw, out_hw, kernel_size, stride, padding, dilation)), out_hw)


def max_pool2d_backward(x: Array, dy: Array, *, kernel_size: Pair, stride: Pair, padding: Pads,
                        dilation: Pair, ceil_mode: bool) -> Array:
    """Each window's dy goes to its first maximal real input element (row-major; NaN counts as
    maximal); windows that see only padding pass nothing (padding taps are never visited)."""
    xp = array_module(x)
    hw = (int(x.shape[2]), int(x.shape[3]))
    out_hw = (int(dy.shape[2]), int(dy.shape[3]))
    windows = list(valid_taps(hw, out_hw, kernel_size, stride, padding, dilation))
    peak = _max_over_taps(x, windows, out_hw)
    peak_nan = xp.isnan(peak)
    zero = xp.zeros((), dtype=dy.dtype)
    pending = xp.ones(dy.shape, dtype=bool)  # windows whose gradient is not yet placed
    dx = xp.zeros(x.shape, dtype=dy.dtype)
    for _, _, o, i in windows:
        vals = x[i]
        hit = pending[o] & ((vals == peak[o]) | (xp.isnan(vals) & peak_nan[o]))
        dx[i] += xp.where(hit, dy[o], zero)
        pending[o] &= ~hit
    return dx


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
    hw = (int(x.shape[2]), int(x.shape[3]))
    out_hw = _out_hw(hw, kernel_size, stride, padding, dil, ceil_mode)
    total = None
    for _, _, o, i in valid_taps(hw, out_hw, kernel_size, stride, padding, dil):
        if total is None:
            if _whole(o, out_hw):
                total = x[i].copy()
                continue
            total = xp.zeros(tuple(x.shape[:2]) + tuple(out_hw), dtype=x.dtype)  # padding adds 0
        view = total[o]
        xp.add(view, x[i], out=view)
    if total is None:  # unreachable (every window covers some input), kept for safety
        total = xp.zeros(tuple(x.shape[:2]) + tuple(out_hw), dtype=x.dtype)
    total /= host_to(xp, _divisor(hw, kernel_size, stride, padding, out_hw, count_include_pad), x)  # a fresh array
    return total


def avg_pool2d_backward(dy: Array, *, input_shape: tuple, kernel_size: Pair, stride: Pair, padding: Pads,
                        ceil_mode: bool, count_include_pad: bool) -> Array:
    """Each window's dy over its divisor, added to every real element of the window."""
    xp = array_module(dy)
    n, c, h, w = input_shape
    out_hw = (int(dy.shape[2]), int(dy.shape[3]))
    share = dy / host_to(xp, _divisor((h, w), kernel_size, stride, padding, out_hw, count_include_pad), dy)
    dx = xp.zeros(tuple(input_shape), dtype=dy.dtype)
    for _, _, o, i in valid_taps((h, w), out_hw, kernel_size, stride, padding, (1, 1)):
        view = dx[i]
        xp.add(view, share[o], out=view)
    return dx


KERNELS: dict[str, Callable[..., Array]] = {
    "max_pool2d": max_pool2d, "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d, "avg_pool2d_backward": avg_pool2d_backward,
}
