"""conv2d and its two gradients as im2col + one (grouped) GEMM through ``xp.matmul`` (cuBLAS on CuPy).

Layout: the columns are (G, Cg*KH*KW, N*OH*OW) and the weights (G, Og, Cg*KH*KW), so each group
is one large matrix product rather than N small ones.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..xp import Array, array_module
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


def conv2d(x: Array, w: Array, bias: Optional[Array] = None, *, stride: Pair, padding: Pads, dilation: Pair,
           groups: int) -> Array:
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, KH, KW), plus bias."""
    xp = array_module(x)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + padding[0][0] + padding[0][1] - span(1, kh, 1, dilation[0])) // stride[0] + 1
    ow = (wd + padding[1][0] + padding[1][1] - span(1, kw, 1, dilation[1])) // stride[1] + 1
    cols = _columns(x, (kh, kw), stride, padding, dilation, groups, (oh, ow))
    wmat = w.reshape(groups, o // groups, cg * kh * kw)
    out = xp.matmul(wmat, cols).reshape(o, n, oh, ow)  # (G, Og, N*L) -> (O, N, OH, OW)
    if bias is not None:
        out += bias.reshape(o, 1, 1, 1)
    return xp.ascontiguousarray(out.transpose(1, 0, 2, 3))


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
    wmat = w.reshape(groups, o // groups, cg * kh * kw)
    dcols = xp.matmul(wmat.transpose(0, 2, 1), _dy_matrix(dy, groups))  # (G, Cg*KH*KW, N*L)
    dcols = dcols.reshape(c, kh, kw, n, out_hw[0], out_hw[1])
    hp = max(h + padding[0][0] + padding[0][1], span(out_hw[0], kh, stride[0], dilation[0]))
    wp = max(wd + padding[1][0] + padding[1][1], span(out_hw[1], kw, stride[1], dilation[1]))
    dxpad = col2im(dcols, (hp, wp), (kh, kw), stride, dilation)
    return crop(dxpad, padding, (h, wd))


def conv2d_backward_weight(x: Array, dy: Array, *, weight_shape: tuple, stride: Pair, padding: Pads,
                           dilation: Pair, groups: int) -> Array:
    """Gradient of conv2d in w: dy times the im2col columns of x, transposed, per group (GEMM)."""
    xp = array_module(x)
    o, cg, kh, kw = weight_shape
    cols = _columns(x, (kh, kw), stride, padding, dilation, groups, _out_hw(dy))
    dw = xp.matmul(_dy_matrix(dy, groups), cols.transpose(0, 2, 1))  # (G, Og, Cg*KH*KW)
    return dw.reshape(o, cg, kh, kw)


KERNELS: dict[str, Callable[..., Array]] = {
    "conv2d": conv2d, "conv2d_bias_relu": conv2d_bias_relu, "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weight": conv2d_backward_weight,
}
