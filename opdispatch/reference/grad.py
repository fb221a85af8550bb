"""Reference backward ops in float64, written as the adjoints of the forward references:
explicit loops over kernel taps or output windows, for clarity, not speed."""

from __future__ import annotations

import numpy as np

from .nn import softmax


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _tap_slice(i, j, stride, dilation, out_hw):
    """The (rows, cols) slices of the padded input seen by kernel tap (i, j) over every output position."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def conv2d_backward_input(dy, w, *, input_shape, stride, padding, dilation, groups):
    """The adjoint of conv2d in x: every tap (i, j) scatters ``w[:, :, i, j]^T dy`` back onto the padded
    input positions it read; the padding is then cropped away."""
    dy, w = _f64(dy), _f64(w)
    n, c_in, h, wd = input_shape
    c_out, c_per_group, kh, kw = w.shape
    (pt, pb), (pl, pr) = padding
    oh, ow = dy.shape[2:]
    out_per_group = c_out // groups
    dxp = np.zeros((n, c_in, h + pt + pb, wd + pl + pr))
    for g in range(groups):
        chans = slice(g * c_per_group, (g + 1) * c_per_group)
        dyg = dy[:, g * out_per_group:(g + 1) * out_per_group]
        wg = w[g * out_per_group:(g + 1) * out_per_group]
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap_slice(i, j, stride, dilation, (oh, ow))
                dxp[:, chans, rows, cols] += np.einsum("nohw,oc->nchw", dyg, wg[:, :, i, j])
    return dxp[:, :, pt:pt + h, pl:pl + wd]


def conv2d_backward_weight(x, dy, *, weight_shape, stride, padding, dilation, groups):
    """The derivative of conv2d in w: per tap (i, j), dy contracted with the input pixels the tap saw."""
    x, dy = _f64(x), _f64(dy)
    c_out, c_per_group, kh, kw = weight_shape
    (pt, pb), (pl, pr) = padding
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    out_per_group = c_out // groups
    dw = np.zeros(weight_shape)
    for g in range(groups):
        xg = xp[:, g * c_per_group:(g + 1) * c_per_group]
        dyg = dy[:, g * out_per_group:(g + 1) * out_per_group]
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap_slice(i, j, stride, dilation, (oh, ow))
                dw[g * out_per_group:(g + 1) * out_per_group, :, i, j] = \
                    np.einsum("nohw,nchw->oc", dyg, xg[:, :, rows, cols])
    return dw


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


def batch_norm_backward(x, dy, running_mean, running_var, weight=None, *, training, eps):
    """(dx, dweight, dbias) of ``y = weight * (x - mean) / sqrt(var + eps) + bias``. In training, mean
    and (biased) var are the batch statistics and dx includes their dependence on x."""
    x, dy = _f64(x), _f64(dy)
    c = x.shape[1]
    bshape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    gamma = np.ones(c) if weight is None else _f64(weight)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = _f64(running_mean), _f64(running_var)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(bshape)) * invstd.reshape(bshape)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    dxhat = dy * gamma.reshape(bshape)
    if training:
        # d xhat_k / d x_j = invstd * (delta_jk - 1/M - xhat_j xhat_k / M)
        dx = invstd.reshape(bshape) * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                                       - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    else:
        dx = dxhat * invstd.reshape(bshape)
    return dx, dweight, dbias


def relu_backward(dy, x):
    """dy where x > 0, else 0."""
    return np.where(_f64(x) > 0, _f64(dy), 0.0)


def max_backward(x, dy, *, axis, keepdims):
    """dy of each reduced slice split equally among the slice's maxima (NaN maxima: the NaNs)."""
    x, dy = _f64(x), _f64(dy)
    m = np.max(x, axis=axis, keepdims=True)
    hit = (x == m) | (np.isnan(x) & np.isnan(m))
    count = hit.sum(axis=axis, keepdims=True)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), 0.0)


def softmax_cross_entropy_backward(logits, labels, dloss):
    """(softmax(logits) - onehot(labels)) * dloss / N."""
    p = softmax(logits, axis=1)
    n = p.shape[0]
    p[np.arange(n), np.asarray(labels)] -= 1.0
    return p * (float(_f64(dloss)) / n)


def broadcast_to(x, *, shape):
    """x broadcast to ``shape`` (a float64 copy)."""
    return np.array(np.broadcast_to(_f64(x), shape))
