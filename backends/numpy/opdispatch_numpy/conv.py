"""conv2d as im2col (the strided window view copied once, into a reused scratch buffer) and one
batched BLAS matmul, over batch chunks that keep the scratch small."""

from __future__ import annotations

import numpy as np
from opdispatch.shapes import output_hw

from .scratch import batch_chunks, scratch
from .windows import pad_hw, windows


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
