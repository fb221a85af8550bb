"""Reference conv family: conv2d (cross-correlation, no kernel flip; NCHW input, OIHW weights), the fused
conv2d_bias_relu, conv2d_bias_clip, and conv2d's input and weight gradients as explicit adjoints over kernel taps."""

from __future__ import annotations

import numpy as np


def conv2d(x, w, bias=None, *, stride, padding, dilation, groups):
    """Sum over kernel taps of the shifted, strided input times the tap's weights, per group."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (pt, pb), (pl, pr) = padding
    sh, sw = stride
    dh, dw = dilation
    n, c_in, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out_per_group = c_out // groups
    y = np.zeros((n, c_out, oh, ow))
    for g in range(groups):
        xg = xp[:, g * c_per_group:(g + 1) * c_per_group]
        wg = w[g * out_per_group:(g + 1) * out_per_group]
        for i in range(kh):
            for j in range(kw):
                # input pixels seen by tap (i, j) for every output position
                patch = xg[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
                y[:, g * out_per_group:(g + 1) * out_per_group] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64).reshape(1, c_out, 1, 1)
    return y


def conv2d_bias_relu(x, w, bias=None, *, stride, padding, dilation, groups):
    """relu(conv2d(x, w, bias))."""
    return np.maximum(conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups), 0.0)


def conv2d_bias_clip(x, w, bias=None, *, stride, padding, dilation, groups, min, max):  # noqa: A002 - clip's names
    """clip(conv2d(x, w, bias), min, max) (None: unbounded; NaN stays NaN; min > max gives max)."""
    y = conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if min is not None:
        y = np.maximum(y, min)
    if max is not None:
        y = np.minimum(y, max)
    return y


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


def conv_transpose2d(x, w, bias=None, *, stride, padding, output_padding, dilation, groups):
    """PyTorch's ConvTranspose2d written as a scatter: input pixel (i, j) of channel ci adds
    ``x[n, ci, i, j] * w[ci, co, a, b]`` to the full output at (i * sh + a * dh, j * sw + b * dw) for
    every tap (a, b) and every output channel co of ci's group; the full output (extended by
    output_padding zero rows/columns at the bottom/right) is then cropped by the padding."""
    x, w = _f64(x), _f64(w)
    n, c_in, h, wd = x.shape
    _, out_per_group, kh, kw = w.shape
    in_per_group = c_in // groups
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw), (oph, opw) = stride, dilation, output_padding
    full_h = (h - 1) * sh + dh * (kh - 1) + 1
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1
    full = np.zeros((n, groups * out_per_group, full_h + oph, full_w + opw))
    for ci in range(c_in):
        g = ci // in_per_group
        for co in range(out_per_group):
            for a in range(kh):
                for b in range(kw):  # every input pixel at once: rows i * sh + a * dh, columns j * sw + b * dw
                    rows = slice(a * dh, a * dh + sh * (h - 1) + 1, sh)
                    cols = slice(b * dw, b * dw + sw * (wd - 1) + 1, sw)
                    full[:, g * out_per_group + co, rows, cols] += x[:, ci] * w[ci, co, a, b]
    y = full[:, :, pt:full_h + oph - pb, pl:full_w + opw - pr]
    if bias is not None:
        y = y + _f64(bias).reshape(1, -1, 1, 1)
    return y
