"""conv2d as im2col (the strided window view copied once, into a reused scratch buffer) and one
batched BLAS matmul, over batch chunks that keep the scratch small; its gradients as one batched
GEMM each (plus a col2im scatter per kernel tap)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import output_hw

from .scratch import batch_chunks, scratch, zeros
from .windows import pad_hw, tap, windows


def im2col(x: np.ndarray, kernel, stride, padding, dilation, out_hw, groups: int, tag: str = "cols") -> np.ndarray:
    """The columns (N, G, Cg*KH*KW, OH*OW) of ``x``'s windows, in scratch buffer ``tag``."""
    n, c = x.shape[:2]
    kh, kw = kernel
    view = windows(pad_hw(x, padding, scratch_tag="pad"), kernel, stride, dilation, out_hw)  # (N, C, KH, KW, OH, OW)
    cols = scratch(tag, view.shape, x.dtype)
    np.copyto(cols, view)
    return cols.reshape(n, groups, (c // groups) * kh * kw, out_hw[0] * out_hw[1])


def conv2d(x, w, bias=None, *, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = output_hw((h, wd), (kh, kw), stride, padding, dilation)
    k = c_per_group * kh * kw
    wmat = w.reshape(groups, c_out // groups, k)
    y = np.empty((n, groups, c_out // groups, oh * ow), dtype=np.result_type(x, w))
    for n0, n1 in batch_chunks(n, c * kh * kw * oh * ow * x.itemsize):
        cols = im2col(x[n0:n1], (kh, kw), stride, padding, dilation, (oh, ow), groups)
        np.matmul(wmat, cols, out=y[n0:n1])  # (n, G, C_out/G, OH*OW), broadcasting the weights over the batch
    y = y.reshape(n, c_out, oh, ow)
    if bias is not None:
        y += bias.reshape(1, c_out, 1, 1)
    return y


def conv2d_bias_relu(x, w, bias=None, *, stride, padding, dilation, groups):
    """relu(conv2d(...)) with the bias and the relu applied in place on the GEMM's output."""
    y = conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.maximum(y, y.dtype.type(0), out=y)


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


KERNELS: dict[str, Callable] = {
    "conv2d": conv2d, "conv2d_bias_relu": conv2d_bias_relu,
    "conv2d_backward_input": conv2d_backward_input, "conv2d_backward_weight": conv2d_backward_weight,
}
