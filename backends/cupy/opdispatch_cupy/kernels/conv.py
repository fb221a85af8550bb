"""conv2d and its two gradients as im2col + one (grouped) GEMM through ``xp.matmul`` (cuBLAS on CuPy).

Layout: the columns are (G, Cg*KH*KW, N*OH*OW) and the weights (G, Og, Cg*KH*KW), so each group
is one large matrix product rather than N small ones. The batch runs in chunks whose columns stay
under `memory.CHUNK_BYTES`, and a large call first checks that its output and one chunk's workspace
fit in the memory free (`memory.CuPyOutOfMemoryError` if not).
"""

from __future__ import annotations

from typing import Callable, Optional

from ..xp import Array, array_module
from .memory import batch_chunks, check_fits, chunk_size
from .windows import Pads, Pair, col2im, crop, im2col, padded, span


def _out_hw(dy: Array) -> Pair:
    return int(dy.shape[2]), int(dy.shape[3])


def _columns(x: Array, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair, groups: int,
             out_hw: Pair) -> Array:
    """im2col of x as (G, Cg*KH*KW, N*OH*OW)."""
    xpad = padded(x, padding, out_hw, kernel, stride, dilation, 0.0)
    cols = im2col(xpad, kernel, stride, dilation, out_hw)
    c = x.shape[1]
    return cols.reshape(groups, (c // groups) * kernel[0] * kernel[1], -1)


def _dy_matrix(dy: Array, groups: int) -> Array:
    """dy (N, O, OH, OW) as (G, Og, N*OH*OW)."""
    xp = array_module(dy)
    n, o = dy.shape[:2]
    return xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, o // groups, -1)


def _padded_hw(hw: Pair, padding: Pads, out_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    return (max(hw[0] + padding[0][0] + padding[0][1], span(out_hw[0], kernel[0], stride[0], dilation[0])),
            max(hw[1] + padding[1][0] + padding[1][1], span(out_hw[1], kernel[1], stride[1], dilation[1])))


def _workspace(x_shape: tuple, o: int, kernel: Pair, out_hw: Pair, padded_hw: Pair, itemsize: int) -> tuple[int, int]:
    """(bytes per sample of the im2col columns, bytes per sample of the rest of a chunk's workspace: the
    padded input and the GEMM's output or input in the transposed layout)."""
    c, l_ = x_shape[1], out_hw[0] * out_hw[1]
    cols = c * kernel[0] * kernel[1] * l_ * itemsize
    return cols, (c * padded_hw[0] * padded_hw[1] + 2 * o * l_) * itemsize


def conv2d(x: Array, w: Array, bias: Optional[Array] = None, *, stride: Pair, padding: Pads, dilation: Pair,
           groups: int) -> Array:
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, KH, KW), plus bias."""
    xp = array_module(x)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + padding[0][0] + padding[0][1] - span(1, kh, 1, dilation[0])) // stride[0] + 1
    ow = (wd + padding[1][0] + padding[1][1] - span(1, kw, 1, dilation[1])) // stride[1] + 1
    cols_b, rest_b = _workspace(x.shape, o, (kh, kw), (oh, ow),
                                _padded_hw((h, wd), padding, (oh, ow), (kh, kw), stride, dilation), x.itemsize)
    m = chunk_size(n, cols_b)
    check_fits("conv2d", xp, {"output": n * o * oh * ow * x.itemsize, "im2col columns": m * cols_b,
                              "padded input and GEMM output": m * rest_b})
    wmat = w.reshape(groups, o // groups, cg * kh * kw)
    y = xp.empty((n, o, oh, ow), dtype=x.dtype)
    for n0, n1 in batch_chunks(n, cols_b):
        cols = _columns(x[n0:n1], (kh, kw), stride, padding, dilation, groups, (oh, ow))
        out = xp.matmul(wmat, cols).reshape(o, n1 - n0, oh, ow)  # (G, Og, n*L) -> (O, n, OH, OW)
        y[n0:n1] = out.transpose(1, 0, 2, 3)
        del cols, out  # before the next chunk's are made: one chunk's workspace at a time
    if bias is not None:
        y += bias.reshape(1, o, 1, 1)
    return y


def conv2d_bias_relu(x: Array, w: Array, bias: Optional[Array] = None, *, stride: Pair, padding: Pads,
                     dilation: Pair, groups: int) -> Array:
    """relu(conv2d(...)), the relu applied in place on the conv's output."""
    y = conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return array_module(y).maximum(y, y.dtype.type(0), out=y)


def conv2d_backward_input(dy: Array, w: Array, *, input_shape: tuple, stride: Pair, padding: Pads,
                          dilation: Pair, groups: int) -> Array:
    """Gradient of conv2d in x: W^T dy per group (GEMM), then col2im, then the padding cropped."""
    xp = array_module(dy)
    n, c, h, wd = input_shape
    o, cg, kh, kw = w.shape
    out_hw = _out_hw(dy)
    hp, wp = _padded_hw((h, wd), padding, out_hw, (kh, kw), stride, dilation)
    cols_b, rest_b = _workspace(input_shape, o, (kh, kw), out_hw, (hp, wp), dy.itemsize)
    m = chunk_size(n, cols_b)
    check_fits("conv2d_backward_input", xp, {"output": n * c * h * wd * dy.itemsize, "im2col columns": m * cols_b,
                                             "padded gradient and GEMM input": m * rest_b})
    wmat = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
    dx = xp.empty((n, c, h, wd), dtype=dy.dtype)
    for n0, n1 in batch_chunks(n, cols_b):
        dcols = xp.matmul(wmat, _dy_matrix(dy[n0:n1], groups))  # (G, Cg*KH*KW, n*L)
        dcols = dcols.reshape(c, kh, kw, n1 - n0, out_hw[0], out_hw[1])
        dx[n0:n1] = crop(col2im(dcols, (hp, wp), (kh, kw), stride, dilation), padding, (h, wd))
        del dcols  # before the next chunk's are made
    return dx


def conv2d_backward_weight(x: Array, dy: Array, *, weight_shape: tuple, stride: Pair, padding: Pads,
                           dilation: Pair, groups: int) -> Array:
    """Gradient of conv2d in w: dy times the im2col columns of x, transposed, per group (GEMM),
    summed over the batch chunks."""
    xp = array_module(x)
    n = x.shape[0]
    o, cg, kh, kw = weight_shape
    out_hw = _out_hw(dy)
    cols_b, rest_b = _workspace(x.shape, o, (kh, kw), out_hw,
                                _padded_hw(x.shape[2:], padding, out_hw, (kh, kw), stride, dilation), x.itemsize)
    m = chunk_size(n, cols_b)
    check_fits("conv2d_backward_weight", xp, {"im2col columns": m * cols_b,
                                              "padded input and GEMM input": m * rest_b})
    dw = xp.zeros((groups, o // groups, cg * kh * kw), dtype=x.dtype)  # an empty batch: no term, zeros
    for n0, n1 in batch_chunks(n, cols_b):
        cols = _columns(x[n0:n1], (kh, kw), stride, padding, dilation, groups, out_hw)
        dw += xp.matmul(_dy_matrix(dy[n0:n1], groups), cols.transpose(0, 2, 1))  # (G, Og, Cg*KH*KW)
        del cols  # before the next chunk's are made
    return dw.reshape(o, cg, kh, kw)


KERNELS: dict[str, Callable[..., Array]] = {
    "conv2d": conv2d, "conv2d_bias_relu": conv2d_bias_relu, "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weight": conv2d_backward_weight,
}
