"""Reference max and average pooling, NCHW."""

from __future__ import annotations

import numpy as np

from ..shapes import output_hw


def _windows(xp, kernel_size, stride, dilation, oh, ow):
    """Yield, per kernel tap, the (N, C, oh, ow) slice of ``xp`` that the tap sees."""
    kh, kw = kernel_size
    sh, sw = stride
    dh, dw = dilation
    for i in range(kh):
        for j in range(kw):
            yield xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]


def _pad_for_windows(x, padding, kernel_size, stride, dilation, oh, ow, fill):
    """Pad with ``fill``: the declared padding plus whatever ceil_mode's last window overhangs."""
    (pt, pb), (pl, pr) = padding
    n, c, h, w = x.shape
    need_h = (oh - 1) * stride[0] + dilation[0] * (kernel_size[0] - 1) + 1
    need_w = (ow - 1) * stride[1] + dilation[1] * (kernel_size[1] - 1) + 1
    extra_b = max(need_h - (h + pt + pb), 0)
    extra_r = max(need_w - (w + pl + pr), 0)
    return np.pad(x, ((0, 0), (0, 0), (pt, pb + extra_b), (pl, pr + extra_r)), constant_values=fill)


def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Maximum over each window; padding counts as -inf."""
    x = np.asarray(x, dtype=np.float64)
    oh, ow = output_hw(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad_for_windows(x, padding, kernel_size, stride, dilation, oh, ow, -np.inf)
    return np.max(np.stack(list(_windows(xp, kernel_size, stride, dilation, oh, ow))), axis=0)


def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Mean over each window. The divisor is the window clipped to the padded input
    (``count_include_pad``) or the number of real input elements in it."""
    x = np.asarray(x, dtype=np.float64)
    dil = (1, 1)
    h, w = x.shape[2:]
    oh, ow = output_hw((h, w), kernel_size, stride, padding, dil, ceil_mode)
    xp = _pad_for_windows(x, padding, kernel_size, stride, dil, oh, ow, 0.0)
    total = sum(_windows(xp, kernel_size, stride, dil, oh, ow))
    # Divisor: count the ones of a mask covering the real input (count_include_pad=False) or
    # the padded input (True); ceil_mode's overhang beyond the padding never counts.
    (pt, pb), (pl, pr) = padding
    if count_include_pad:
        mask = np.pad(np.ones((1, 1, h + pt + pb, w + pl + pr)),
                      ((0, 0), (0, 0), (0, xp.shape[2] - (h + pt + pb)), (0, xp.shape[3] - (w + pl + pr))))
    else:
        mask = _pad_for_windows(np.ones((1, 1, h, w)), padding, kernel_size, stride, dil, oh, ow, 0.0)
    divisor = sum(_windows(mask, kernel_size, stride, dil, oh, ow))
    return total / divisor
