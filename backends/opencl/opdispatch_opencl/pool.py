"""max_pool2d and avg_pool2d with their gradients: direct kernels, one work-item per output (or, for
the gradients, per input element gathering the windows that read it)."""

from __future__ import annotations

from opdispatch.shapes import output_hw

from .arrays import CLArray, empty
from .launch import i32, kernel, run_1d

FAMILY = "pool"


def _geometry(hw, out_hw, kernel_size, stride, padding, dilation) -> list:
    (pt, _), (pl, _) = padding
    vals = (hw[0], hw[1], out_hw[0], out_hw[1], kernel_size[0], kernel_size[1], stride[0], stride[1], pt, pl,
            dilation[0], dilation[1])
    return [i32(v) for v in vals]


def _far_pads(padding) -> list:
    return [i32(padding[0][1]), i32(padding[1][1])]


def max_pool2d(x: CLArray, *, kernel_size, stride, padding, dilation, ceil_mode) -> CLArray:
    """Maximum over each (dilated) window; padding is -inf."""
    n, c, h, w = x.shape
    out_hw = output_hw((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    y = empty(x.dev, (n, c) + out_hw, x.dtype)
    geo = _geometry((h, w), out_hw, kernel_size, stride, padding, dilation)
    run_1d(x.dev, kernel(x.dev, FAMILY, "max_pool", x.dtype), y.size, x.buf, y.buf, i32(y.size), *geo)
    return y


def max_pool2d_backward(x: CLArray, dy: CLArray, *, kernel_size, stride, padding, dilation, ceil_mode) -> CLArray:
    """Each window's dy goes to its first maximal input element (row-major)."""
    dev = x.dev
    n, c, h, w = x.shape
    out_hw = dy.shape[2:]
    geo = _geometry((h, w), out_hw, kernel_size, stride, padding, dilation)
    arg = empty(dev, dy.shape, "int32")
    run_1d(dev, kernel(dev, FAMILY, "max_pool_argmax", x.dtype), dy.size, x.buf, arg.buf, i32(dy.size), *geo)
    dx = empty(dev, x.shape, x.dtype)
    run_1d(dev, kernel(dev, FAMILY, "max_pool_backward", x.dtype), dx.size, arg.buf, dy.buf, dx.buf, i32(dx.size),
           *geo)
    return dx


def avg_pool2d(x: CLArray, *, kernel_size, stride, padding, ceil_mode, count_include_pad) -> CLArray:
    """Mean over each window; the divisor follows ``count_include_pad``."""
    n, c, h, w = x.shape
    out_hw = output_hw((h, w), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = empty(x.dev, (n, c) + out_hw, x.dtype)
    geo = _geometry((h, w), out_hw, kernel_size, stride, padding, (1, 1))
    run_1d(x.dev, kernel(x.dev, FAMILY, "avg_pool", x.dtype), y.size, x.buf, y.buf, i32(y.size), *geo,
           *_far_pads(padding), i32(int(count_include_pad)))
    return y


def avg_pool2d_backward(dy: CLArray, *, input_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad) -> CLArray:
    """Each window's dy over its divisor, spread over its real input elements."""
    dx = empty(dy.dev, input_shape, dy.dtype)
    geo = _geometry(input_shape[2:], dy.shape[2:], kernel_size, stride, padding, (1, 1))
    run_1d(dy.dev, kernel(dy.dev, FAMILY, "avg_pool_backward", dy.dtype), dx.size, dy.buf, dx.buf, i32(dx.size),
           *geo, *_far_pads(padding), i32(int(count_include_pad)))
    return dx


KERNELS = {"max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d, "max_pool2d_backward": max_pool2d_backward,
           "avg_pool2d_backward": avg_pool2d_backward}
