"""conv2d as im2col (a strided window view copied once) and one batched BLAS matmul."""

from __future__ import annotations

import numpy as np
from opdispatch.shapes import output_hw

from .windows import pad_hw, windows


def conv2d(x, w, bias=None, *, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = output_hw((h, wd), (kh, kw), stride, padding, dilation)
    xp = pad_hw(x, padding)
    view = windows(xp, (kh, kw), stride, dilation, (oh, ow))  # (N, C, KH, KW, OH, OW)
    k = c_per_group * kh * kw
    # columns (N, G, Cg*KH*KW, OH*OW): the only copy of the input's windows
    cols = view.reshape(n, groups, k, oh * ow)
    wmat = w.reshape(groups, c_out // groups, k)
    y = np.matmul(wmat, cols)  # (N, G, C_out/G, OH*OW), broadcasting the weights over the batch
    y = y.reshape(n, c_out, oh, ow)
    if bias is not None:
        y += bias.reshape(1, c_out, 1, 1)
    return y
