"""Reference pool family, NCHW: max and average pooling and their gradients (loops over windows)."""

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
    oh, ow = output_hw(x.shape[2:], kernel_size, stride, padding, dil, ceil_mode)
    xp = _pad_for_windows(x, padding, kernel_size, stride, dil, oh, ow, 0.0)
    total = sum(_windows(xp, kernel_size, stride, dil, oh, ow))
    return total / avg_pool_divisor(x.shape[2:], kernel_size=kernel_size, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def avg_pool_divisor(hw, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """The (OH, OW) divisors of average pooling an input of spatial size ``hw``: per window, the
    number of elements of the padded input (``count_include_pad``) or of the real input it covers;
    ceil_mode's overhang beyond the padding never counts."""
    dil = (1, 1)
    h, w = hw
    oh, ow = output_hw((h, w), kernel_size, stride, padding, dil, ceil_mode)
    (pt, pb), (pl, pr) = padding
    if count_include_pad:  # a mask covering the padded input, extended by the overhang with zeros
        ones = np.ones((1, 1, h + pt + pb, w + pl + pr))
        mask = _pad_for_windows(ones, ((0, 0), (0, 0)), kernel_size, stride, dil, oh, ow, 0.0)
    else:
        mask = _pad_for_windows(np.ones((1, 1, h, w)), padding, kernel_size, stride, dil, oh, ow, 0.0)
    return sum(_windows(mask, kernel_size, stride, dil, oh, ow))[0, 0]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _window_taps(a, size, k, stride, pad_lo, dilation):
    """Input indices (inside [0, size)) of window ``a`` along one axis, in order."""
    start = a * stride - pad_lo
    return [start + t * dilation for t in range(k) if 0 <= start + t * dilation < size]


def max_pool2d_backward(x, dy, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Per output window: find its first maximal real input element in row-major order (NaN counts
    as maximal) and add the window's dy there. Padding taps are never candidates (a dilated window
    that sees only padding passes no gradient)."""
    x, dy = _f64(x), _f64(dy)
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros_like(x)
    ni, ci = np.indices((n, c))
    for a in range(oh):
        rows = _window_taps(a, h, kernel_size[0], stride[0], padding[0][0], dilation[0])
        for b in range(ow):
            cols = _window_taps(b, w, kernel_size[1], stride[1], padding[1][0], dilation[1])
            if not rows or not cols:
                continue  # a dilated window whose taps all land in the padding: no input to credit
            rr = np.array([r for r in rows for _ in cols], dtype=np.intp)
            qq = np.array([q for _ in rows for q in cols], dtype=np.intp)
            vals = x[:, :, rr, qq]  # (N, C, taps), row-major over the window
            m = vals.max(axis=-1, keepdims=True)
            first = np.argmax((vals == m) | (np.isnan(vals) & np.isnan(m)), axis=-1)
            np.add.at(dx, (ni, ci, rr[first], qq[first]), dy[:, :, a, b])
    return dx


def avg_pool2d_backward(dy, *, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Per output window: its dy divided by the window's divisor (the window clipped to the padded
    input, or to the real input without count_include_pad), added to each real element."""
    dy = _f64(dy)
    n, c, h, w = input_shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(input_shape)

    def extent(a, size, k, s, pads):
        start = a * s - pads[0]
        real = (max(start, 0), min(start + k, size))
        counted = (max(start, -pads[0]), min(start + k, size + pads[1])) if count_include_pad else real
        return real, counted[1] - counted[0]

    for a in range(oh):
        (r0, r1), count_h = extent(a, h, kernel_size[0], stride[0], padding[0])
        for b in range(ow):
            (q0, q1), count_w = extent(b, w, kernel_size[1], stride[1], padding[1])
            dx[:, :, r0:r1, q0:q1] += (dy[:, :, a, b] / (count_h * count_w))[:, :, None, None]
    return dx


def adaptive_avg_pool2d(x, *, output_size):
    """PyTorch's adaptive average pooling: output (i, j) is the mean of the rows
    [floor(i * H / OH), ceil((i + 1) * H / OH)) and columns [floor(j * W / OW), ceil((j + 1) * W / OW))."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    oh, ow = output_size
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y
