"""Backward kernels, vectorised in the input dtype: conv gradients as one batched GEMM each (plus a
col2im scatter per kernel tap), pooling gradients as one strided pass per kernel tap."""

from __future__ import annotations

import numpy as np

from .norm import batch_stats, layout
from .pool import _counts, _overhang
from .conv import conv2d, im2col
from .scratch import batch_chunks, scratch, zeros
from .windows import pad_hw, tap


def _crop(xp, pads, hw):
    """A fresh copy of the interior of padded ``xp`` (never ``xp`` itself: it may be scratch)."""
    (pt, _), (pl, _) = pads
    return np.array(xp[:, :, pt:pt + hw[0], pl:pl + hw[1]], order="C", copy=True)


def _as_forward_conv(dy, w, padding, dilation, groups):
    """The input gradient of a stride-1 conv as a forward conv of ``dy`` with the flipped, per-group
    transposed weights (one well-shaped GEMM instead of a thin one plus a scatter); None when the
    padding is wider than the dilated kernel (then a full conv cannot express it)."""
    c_out, c_per_group, kh, kw = w.shape
    extent = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    pads = tuple((extent[a] - padding[a][0], extent[a] - padding[a][1]) for a in (0, 1))
    if min(min(p) for p in pads) < 0:
        return None
    og = c_out // groups
    wt = w[:, :, ::-1, ::-1].reshape(groups, og, c_per_group, kh, kw).transpose(0, 2, 1, 3, 4)
    wt = np.ascontiguousarray(wt).reshape(groups * c_per_group, og, kh, kw)
    return conv2d(dy, wt, stride=(1, 1), padding=pads, dilation=dilation, groups=groups)


def conv2d_backward_input(dy, w, *, input_shape, stride, padding, dilation, groups):
    n, c, h, wd = input_shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    og = c_out // groups
    if stride == (1, 1) and c_per_group >= 8:  # enough output channels for the GEMM to be well shaped
        dx = _as_forward_conv(dy, w, padding, dilation, groups)
        if dx is not None:
            return dx
    wmat = w.reshape(groups, og, c_per_group * kh * kw).transpose(0, 2, 1)
    (pt, pb), (pl, pr) = padding
    dx = np.empty(input_shape, dtype=dy.dtype)
    for n0, n1 in batch_chunks(n, c * kh * kw * oh * ow * dy.itemsize):
        m = n1 - n0
        # GEMM: columns (n, G, Cg*KH*KW, OH*OW) = w_g^T @ dy_g, broadcasting the weights over the batch
        cols = scratch("cols", (m, groups, c_per_group * kh * kw, oh * ow), dy.dtype)
        np.matmul(wmat, dy[n0:n1].reshape(m, groups, og, oh * ow), out=cols)
        cols = cols.reshape(m, c, kh, kw, oh, ow)
        # col2im: scatter-add each tap's columns back onto the padded input (no collisions within a tap)
        dxp = zeros("pad", (m, c, h + pt + pb, wd + pl + pr), dy.dtype)
        for i in range(kh):
            for j in range(kw):
                view = tap(dxp, i, j, stride, dilation, (oh, ow))
                view += cols[:, :, i, j]
        dx[n0:n1] = dxp[:, :, pt:pt + h, pl:pl + wd]
    return dx


def _batch_folded_columns(x, kernel, stride, padding, dilation, out_hw):
    """Columns (C, KH, KW, N, OH, OW) in scratch, written one kernel tap at a time: the batch folds
    into the GEMM's contraction."""
    n, c = x.shape[:2]
    cols = scratch("cols", (c, kernel[0], kernel[1], n) + tuple(out_hw), x.dtype)
    xp = pad_hw(x, padding, scratch_tag="pad")
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            np.copyto(cols[:, i, j], tap(xp, i, j, stride, dilation, out_hw).transpose(1, 0, 2, 3))
    return cols


def conv2d_backward_weight(x, dy, *, weight_shape, stride, padding, dilation, groups):
    n = x.shape[0]
    c_out, c_per_group, kh, kw = weight_shape
    oh, ow = dy.shape[2:]
    k = c_per_group * kh * kw
    og = c_out // groups
    dw = np.zeros((groups, og, k), dtype=np.result_type(x, dy))
    folded = c_per_group >= 8 and oh * ow <= 1024  # small images: fold the batch into the GEMM
    for n0, n1 in batch_chunks(n, groups * k * oh * ow * x.itemsize):
        m = n1 - n0
        if folded:
            cols = _batch_folded_columns(x[n0:n1], (kh, kw), stride, padding, dilation, (oh, ow))
            dys = np.ascontiguousarray(dy[n0:n1].transpose(1, 0, 2, 3)).reshape(groups, og, m * oh * ow)
            dw += np.matmul(dys, cols.reshape(groups, k, m * oh * ow).transpose(0, 2, 1))
        else:  # one GEMM per (sample, group) contracting over the output positions, then the batch sum
            cols = im2col(x[n0:n1], (kh, kw), stride, padding, dilation, (oh, ow), groups)  # (m, G, K, OH*OW)
            dys = dy[n0:n1].reshape(m, groups, og, oh * ow)
            dw += np.matmul(dys, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return dw.reshape(weight_shape)


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


def batch_norm_backward(x, dy, running_mean, running_var, weight=None, *, training, eps):
    c = x.shape[1]
    bshape, axes = layout(x)
    if training:
        _, xhat, var = batch_stats(x, bshape, axes)
    else:
        xhat = x - running_mean.reshape(bshape)
        var = running_var
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat *= invstd.reshape(bshape)
    dbias = np.sum(dy, axis=axes)
    dweight = np.sum(dy * xhat, axis=axes)
    scale = invstd if weight is None else invstd * weight
    if training:
        count = x.dtype.type(x.size // c)
        dx = xhat
        dx *= -(dweight / count).reshape(bshape)
        dx += dy
        dx -= (dbias / count).reshape(bshape)
        dx *= scale.reshape(bshape)
    else:
        dx = dy * scale.reshape(bshape)
    return dx, dweight, dbias


def select(mask, values):
    """``values`` where ``mask``, else 0: as one multiply by the mask (np.where is several times
    slower here), falling back to np.where when a non-finite value makes ``0 * value`` differ from 0."""
    with np.errstate(invalid="ignore"):  # inf * 0: replaced below
        out = np.multiply(values, mask, dtype=values.dtype)
    if not np.isfinite(out).all():
        out = np.where(mask, values, values.dtype.type(0))
    return out


def relu_backward(dy, x):
    return select(x > 0, dy)


def max_backward(x, dy, *, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    hit = x == m
    if np.isnan(m).any():
        hit |= np.isnan(x) & np.isnan(m)
    count = np.sum(hit, axis=axis, keepdims=True, dtype=x.dtype)
    g = dy if keepdims else np.expand_dims(dy, axis)
    return np.where(hit, g / np.maximum(count, 1), x.dtype.type(0))


def softmax_cross_entropy_backward(logits, labels, dloss):
    p = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    p /= np.sum(p, axis=1, keepdims=True)
    n = logits.shape[0]
    p[np.arange(n), labels] -= 1
    p *= dloss / logits.dtype.type(n)
    return p


def broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


KERNELS = {
    "conv2d_backward_input": conv2d_backward_input, "conv2d_backward_weight": conv2d_backward_weight,
    "max_pool2d_backward": max_pool2d_backward, "avg_pool2d_backward": avg_pool2d_backward,
    "batch_norm_backward": batch_norm_backward, "relu_backward": relu_backward, "max_backward": max_backward,
    "softmax_cross_entropy_backward": softmax_cross_entropy_backward, "broadcast_to": broadcast_to,
}
