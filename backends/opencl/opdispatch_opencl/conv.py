"""conv2d and its gradients: im2col into a column matrix, then the batched GEMM over (image, group);
the input gradient gathers the GEMM's columns back (col2im). Large batches are processed in chunks
so the column matrix stays under `COLS_BUDGET` bytes (and the largest buffer the device allocates);
a call whose buffers cannot exist on the device (one image's columns larger than the largest buffer,
or everything larger than the device's memory) is refused before anything is allocated, with
`OpenCLOutOfMemoryError`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from opdispatch.shapes import output_hw

from .arrays import CLArray, empty
from .errors import OpenCLOutOfMemoryError, current_op
from .launch import i32, kernel, run_1d
from .layout import permute
from .linalg import Operand, gemm
from .runtime import MAX_ELEMENTS, DeviceState, check_size, round_up

FAMILY = "conv"
COLS_BUDGET = 256 << 20  # bytes of the column matrix per chunk


def _geometry(x_shape, w_shape, out_hw, stride, padding, dilation, groups) -> list[Any]:
    _, c, h, wd = x_shape
    _, cg, kh, kw = w_shape
    (pt, _), (pl, _) = padding
    vals = (c, h, wd, kh, kw, out_hw[0], out_hw[1], stride[0], stride[1], pt, pl, dilation[0], dilation[1], cg)
    return [i32(v) for v in vals]


def _chunk(dev: DeviceState, n: int, per_image: int, dtype: Any) -> int:
    """Images per chunk: as many as keep the column matrix under `COLS_BUDGET` and the largest buffer the
    device allocates (and 32-bit indexable)."""
    check_size(per_image, "column matrix")
    per_image = max(per_image, 1)
    budget = min(COLS_BUDGET, dev.max_alloc)
    return max(1, min(n, budget // (per_image * np.dtype(dtype).itemsize), MAX_ELEMENTS // per_image))


def _check_fits(dev: DeviceState, parts: dict) -> None:
    """Refuse a call whose buffers (``{what: bytes}``) cannot exist on ``dev``: one larger than the largest
    buffer it allocates, or all together more than its memory; raised before any is allocated."""
    gib = 1 << 30
    for name, size in parts.items():
        if size > dev.max_alloc:
            raise OpenCLOutOfMemoryError(f"{current_op()}: the {name} needs a buffer of {size / gib:.2f} GiB, more "
                                         f"than the largest {dev.label} allocates ({dev.max_alloc / gib:.2f} GiB); "
                                         f"allowed: a smaller batch or image")
    total = sum(parts.values())
    if total > dev.global_mem:
        what = ", ".join(f"{name} {size / gib:.2f} GiB" for name, size in parts.items())
        raise OpenCLOutOfMemoryError(f"{current_op()}: needs {total / gib:.2f} GiB of device memory ({what}), more "
                                     f"than {dev.label} has ({dev.global_mem / gib:.2f} GiB); allowed: a smaller "
                                     f"batch or image")


def _im2col(x: CLArray, cols: CLArray, geo: list, n0: int, nc: int, strides: tuple) -> None:
    _, c, _, _ = x.shape
    kh, kw, oh = (int(v) for v in geo[3:6])
    rows = nc * c * kh * kw
    knl = kernel(x.dev, FAMILY, "im2col", x.dtype)
    lx = x.dev.local_size(knl, 8)
    ly = max(x.dev.local_size(knl, 256) // lx, 1)
    x.dev.launch(knl, (round_up(oh, lx), round_up(rows, ly)), (lx, ly), x.buf, cols.buf, i32(rows), *geo,
                 *(i32(s) for s in strides), i32(n0))


def _is_pointwise(w_shape, stride, padding) -> bool:
    return w_shape[2:] == (1, 1) and stride == (1, 1) and padding == ((0, 0), (0, 0))


def conv2d(x: CLArray, w: CLArray, bias: Optional[CLArray] = None, *, stride, padding, dilation, groups) -> CLArray:
    """Cross-correlation of x (N, C, H, W) with w (C_out, C/groups, KH, KW), plus bias."""
    dev = x.dev
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    oh, ow = output_hw((h, wd), (kh, kw), stride, padding, dilation)
    p, k, og = oh * ow, cg * kh * kw, c_out // groups
    item = x.dtype.itemsize
    pointwise = _is_pointwise(w.shape, stride, padding)
    chunk = 0 if pointwise else _chunk(dev, n, groups * k * p, x.dtype)
    _check_fits(dev, {"output": n * c_out * p * item, "column matrix": chunk * groups * k * p * item})
    y = empty(dev, (n, c_out, oh, ow), x.dtype)
    a = Operand(w.buf, 0, 0, og * k, k, 1)
    if pointwise:  # x itself is the column matrix, image by image
        gemm(dev, x.dtype, og, p, k, a, Operand(x.buf, 0, c * p, k * p, p), Operand(y.buf, 0, c_out * p, og * p, p),
             batch=(n, groups))
    else:  # columns (G, K, images*P): one long GEMM per group, its columns split back into images
        geo = _geometry(x.shape, w.shape, (oh, ow), stride, padding, dilation, groups)
        cols = empty(dev, (groups, k, chunk * p), x.dtype)
        for n0 in range(0, n, chunk):
            nc = min(chunk, n - n0)
            _im2col(x, cols, geo, n0, nc, (p, k * nc * p, nc * p, 1))
            gemm(dev, x.dtype, og, nc * p, k, a, Operand(cols.buf, 0, 0, k * nc * p, nc * p),
                 Operand(y.buf, n0 * c_out * p, 0, og * p, p, panel=p, panel_stride=c_out * p), batch=(1, groups))
    if bias is not None:
        total = y.size
        run_1d(dev, kernel(dev, FAMILY, "bias_add", x.dtype), total, y.buf, bias.buf, i32(total), i32(c_out), i32(p))
    return y


def conv2d_backward_input(dy: CLArray, w: CLArray, *, input_shape, stride, padding, dilation, groups) -> CLArray:
    """Gradient of conv2d in x: columns = w_g^T @ dy_g per image and group, gathered back by col2im."""
    dev = dy.dev
    n, c, h, wd = input_shape
    c_out, cg, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    p, k, og = oh * ow, cg * kh * kw, c_out // groups
    chunk = _chunk(dev, n, groups * k * p, dy.dtype)
    item = dy.dtype.itemsize
    _check_fits(dev, {"output": n * c * h * wd * item, "column matrix": chunk * groups * k * p * item})
    dx = empty(dev, input_shape, dy.dtype)
    geo = _geometry(input_shape, w.shape, (oh, ow), stride, padding, dilation, groups)
    cols = empty(dev, (chunk, groups, k, p), dy.dtype)
    knl = kernel(dev, FAMILY, "col2im", dy.dtype)
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        gemm(dev, dy.dtype, k, p, og, Operand(w.buf, 0, 0, og * k, 1, k),
             Operand(dy.buf, n0 * c_out * p, c_out * p, og * p, p),
             Operand(cols.buf, 0, groups * k * p, k * p, p), batch=(nc, groups))
        rows = nc * c * h
        run_1d(dev, knl, rows, cols.buf, dx.buf, i32(rows), *geo, i32(groups * k * p), i32(k * p), i32(p),
               i32(n0))
    return dx


def conv2d_backward_weight(x: CLArray, dy: CLArray, *, weight_shape, stride, padding, dilation, groups) -> CLArray:
    """Gradient of conv2d in w: dy_g (C_out/g, N*P) @ columns_g (N*P, K), accumulated over chunks."""
    dev = x.dev
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = weight_shape
    oh, ow = dy.shape[2:]
    p, k, og = oh * ow, cg * kh * kw, c_out // groups
    chunk = _chunk(dev, n, groups * k * p, x.dtype)
    item = x.dtype.itemsize
    _check_fits(dev, {"transposed gradient": n * c_out * p * item, "column matrix": chunk * groups * k * p * item})
    dw = empty(dev, weight_shape, x.dtype)
    dyt = permute(dy.view((n, c_out, p)), (1, 0, 2))  # (C_out, N, P)
    geo = _geometry(x.shape, weight_shape, (oh, ow), stride, padding, dilation, groups)
    cols = empty(dev, (groups, chunk, p, k), x.dtype)
    for n0 in range(0, max(n, 1), chunk):  # an empty batch still runs one GEMM (of no terms: zeros)
        nc = min(chunk, n - n0)
        _im2col(x, cols, geo, n0, nc, (p * k, nc * p * k, 1, k))
        gemm(dev, x.dtype, og, k, nc * p, Operand(dyt.buf, n0 * p, 0, og * n * p, n * p, 1),
             Operand(cols.buf, 0, 0, nc * p * k, k), Operand(dw.buf, 0, 0, og * k, k),
             batch=(1, groups), accumulate=n0 > 0)
    return dw


def conv2d_bias_relu(x: CLArray, w: CLArray, bias: Optional[CLArray] = None, *, stride, padding, dilation,
                     groups) -> CLArray:
    """relu(conv2d(...)): the relu runs in place on the conv's output buffer (no second buffer)."""
    y = conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    run_1d(y.dev, kernel(y.dev, "elementwise", "relu_k", y.dtype), y.size, y.buf, y.buf, i32(y.size))
    return y


KERNELS = {"conv2d": conv2d, "conv2d_backward_input": conv2d_backward_input,
           "conv2d_backward_weight": conv2d_backward_weight, "conv2d_bias_relu": conv2d_bias_relu}
