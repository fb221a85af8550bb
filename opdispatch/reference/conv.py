"""Reference conv2d: cross-correlation (no kernel flip), NCHW input, OIHW weights."""

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
