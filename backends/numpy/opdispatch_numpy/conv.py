"""conv2d as im2col (the strided window view copied once, into a reused scratch buffer) and one
batched BLAS matmul, over batch chunks (or, for a sample too large alone, bands of its output rows)
that keep the scratch small; its gradients as one batched GEMM each (plus a col2im scatter per kernel
tap). A large call first checks that its output and scratch fit in the memory available."""

from __future__ import annotations

from typing import Callable

import numpy as np
from opdispatch.shapes import output_hw

from .scratch import check_fits, largest_band, new_bytes, scratch, work_chunks, zeros
from .windows import pad_hw, tap, windows


def _padded_bytes(m: int, c: int, hw, padding, itemsize: int) -> int:
    """The new scratch bytes of ``m`` samples padded by ``padding`` (none without padding)."""
    (pt, pb), (pl, pr) = padding
    if not (pt or pb or pl or pr):
        return 0
    return new_bytes("pad", m * c * (hw[0] + pt + pb) * (hw[1] + pl + pr) * itemsize)


def im2col(xp: np.ndarray, kernel, stride, dilation, out_hw, groups: int, row0: int = 0,
           tag: str = "cols") -> np.ndarray:
    """The columns (N, G, Cg*KH*KW, R*OW) of padded ``xp``'s windows over the output rows [row0, row0 +
    R), ``out_hw`` = (R, OW), in scratch buffer ``tag``."""
    n, c = xp.shape[:2]
    kh, kw = kernel
    view = windows(xp[:, :, row0 * stride[0]:], kernel, stride, dilation, out_hw)  # (N, C, KH, KW, R, OW)
    cols = scratch(tag, view.shape, xp.dtype)
    np.copyto(cols, view)
    return cols.reshape(n, groups, (c // groups) * kh * kw, out_hw[0] * out_hw[1])


def _conv2d(op, x, w, bias, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = output_hw((h, wd), (kh, kw), stride, padding, dilation)
    k = c_per_group * kh * kw
    wmat = w.reshape(groups, c_out // groups, k)
    dtype = np.result_type(x, w)
    chunks = work_chunks(n, oh, c * kh * kw * ow * x.itemsize)
    m, rows = largest_band(chunks)
    check_fits(op, {"output": n * c_out * oh * ow * dtype.itemsize,
                    "im2col columns": new_bytes("cols", m * c * kh * kw * rows * ow * x.itemsize),
                    "padded input": _padded_bytes(m, c, (h, wd), padding, x.itemsize)})
    y = np.empty((n, groups, c_out // groups, oh * ow), dtype=dtype)
    for n0, n1, bands in chunks:
        xp = pad_hw(x[n0:n1], padding, scratch_tag="pad")
        for r0, r1 in bands:
            cols = im2col(xp, (kh, kw), stride, dilation, (r1 - r0, ow), groups, r0)
            # (n, G, C_out/G, rows*OW), broadcasting the weights over the batch
            np.matmul(wmat, cols, out=y[n0:n1, :, :, r0 * ow:r1 * ow])
    y = y.reshape(n, c_out, oh, ow)
    if bias is not None:
        y += bias.reshape(1, c_out, 1, 1)
    return y


def conv2d(x, w, bias=None, *, stride, padding, dilation, groups):
    return _conv2d("conv2d", x, w, bias, stride, padding, dilation, groups)


def conv2d_bias_relu(x, w, bias=None, *, stride, padding, dilation, groups):
    """relu(conv2d(...)) with the bias and the relu applied in place on the GEMM's output."""
    y = _conv2d("conv2d_bias_relu", x, w, bias, stride, padding, dilation, groups)
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
    return _conv2d("conv2d_backward_input", dy, wt, None, (1, 1), pads, dilation, groups)


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
    chunks = work_chunks(n, oh, c * kh * kw * ow * dy.itemsize)
    m, rows = largest_band(chunks)
    check_fits("conv2d_backward_input", {
        "output": n * c * h * wd * dy.itemsize,
        "im2col columns": new_bytes("cols", m * c * kh * kw * rows * ow * dy.itemsize),
        "padded gradient": new_bytes("pad", m * c * (h + pt + pb) * (wd + pl + pr) * dy.itemsize)})
    dx = np.empty(input_shape, dtype=dy.dtype)
    for n0, n1, bands in chunks:
        m = n1 - n0
        dyg = dy[n0:n1].reshape(m, groups, og, oh * ow)
        dxp = zeros("pad", (m, c, h + pt + pb, wd + pl + pr), dy.dtype)
        for r0, r1 in bands:
            rb = r1 - r0
            # GEMM: columns (n, G, Cg*KH*KW, rows*OW) = w_g^T @ dy_g, broadcasting the weights over the batch
            cols = scratch("cols", (m, groups, c_per_group * kh * kw, rb * ow), dy.dtype)
            np.matmul(wmat, dyg[..., r0 * ow:r1 * ow], out=cols)
            cols = cols.reshape(m, c, kh, kw, rb, ow)
            # col2im: scatter-add each tap's columns back onto the padded input (no collisions within a tap)
            base = dxp[:, :, r0 * stride[0]:]
            for i in range(kh):
                for j in range(kw):
                    view = tap(base, i, j, stride, dilation, (rb, ow))
                    view += cols[:, :, i, j]
        dx[n0:n1] = dxp[:, :, pt:pt + h, pl:pl + wd]
    return dx


def _batch_folded_columns(xp, kernel, stride, dilation, out_hw, row0: int = 0):
    """Columns (C, KH, KW, N, R, OW) of padded ``xp`` over the output rows [row0, row0 + R), in scratch,
    written one kernel tap at a time: the batch folds into the GEMM's contraction."""
    n, c = xp.shape[:2]
    cols = scratch("cols", (c, kernel[0], kernel[1], n) + tuple(out_hw), xp.dtype)
    base = xp[:, :, row0 * stride[0]:]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            np.copyto(cols[:, i, j], tap(base, i, j, stride, dilation, out_hw).transpose(1, 0, 2, 3))
    return cols


def conv2d_backward_weight(x, dy, *, weight_shape, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    c_out, c_per_group, kh, kw = weight_shape
    oh, ow = dy.shape[2:]
    k = c_per_group * kh * kw
    og = c_out // groups
    folded = c_per_group >= 8 and oh * ow <= 1024  # small images: fold the batch into the GEMM
    chunks = work_chunks(n, oh, groups * k * ow * x.itemsize)
    m, rows = largest_band(chunks)
    check_fits("conv2d_backward_weight", {
        "im2col columns": new_bytes("cols", m * groups * k * rows * ow * x.itemsize),
        "padded input": _padded_bytes(m, c, x.shape[2:], padding, x.itemsize),
        "gradient copy": m * c_out * rows * ow * dy.itemsize if folded else 0})
    dw = np.zeros((groups, og, k), dtype=np.result_type(x, dy))
    for n0, n1, bands in chunks:
        m = n1 - n0
        xp = pad_hw(x[n0:n1], padding, scratch_tag="pad")
        for r0, r1 in bands:
            rb = r1 - r0
            if folded:
                cols = _batch_folded_columns(xp, (kh, kw), stride, dilation, (rb, ow), r0)
                dys = np.ascontiguousarray(dy[n0:n1, :, r0:r1].transpose(1, 0, 2, 3)).reshape(groups, og, m * rb * ow)
                dw += np.matmul(dys, cols.reshape(groups, k, m * rb * ow).transpose(0, 2, 1))
            else:  # one GEMM per (sample, group) contracting over the output positions, then the batch sum
                cols = im2col(xp, (kh, kw), stride, dilation, (rb, ow), groups, r0)  # (m, G, K, rows*OW)
                dys = dy[n0:n1, :, r0:r1].reshape(m, groups, og, rb * ow)
                dw += np.matmul(dys, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return dw.reshape(weight_shape)


KERNELS: dict[str, Callable] = {
    "conv2d": conv2d, "conv2d_bias_relu": conv2d_bias_relu,
    "conv2d_backward_input": conv2d_backward_input, "conv2d_backward_weight": conv2d_backward_weight,
}
