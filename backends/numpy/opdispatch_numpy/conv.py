"""conv2d as im2col (the strided window view copied once, into a reused scratch buffer) and one
batched BLAS matmul."""

from __future__ import annotations

import numpy as np
from opdispatch.shapes import output_hw

from .scratch import scratch
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
    cols = im2col(x, (kh, kw), stride, padding, dilation, (oh, ow), groups)
    wmat = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    y = np.matmul(wmat, cols)  # (N, G, C_out/G, OH*OW), broadcasting the weights over the batch
    y = y.reshape(n, c_out, oh, ow)
    if bias is not None:
        y += bias.reshape(1, c_out, 1, 1)
    return y


def conv2d_bias_relu(x, w, bias=None, *, stride, padding, dilation, groups):
    """relu(conv2d(...)) with the bias and the relu applied in place on the GEMM's output."""
    y = conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.maximum(y, y.dtype.type(0), out=y)
