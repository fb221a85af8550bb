"""batch_norm (PyTorch semantics) and its gradient over x viewed as (N, C, S); layer_norm and its gradient over x
viewed as (rows, M), M the normalised elements of a row."""

from __future__ import annotations

import math
from typing import Optional

from .arrays import CLArray, empty
from .launch import i32, kernel, run_1d, run_rows, scalar
from .reduce import row_local

FAMILY = "norm"


def _layout(x: CLArray) -> tuple[int, int, int]:
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def batch_stats(x: CLArray) -> tuple[CLArray, CLArray]:
    """Per-channel batch mean and biased variance."""
    n, c, s = _layout(x)
    mean, var = empty(x.dev, (c,), x.dtype), empty(x.dev, (c,), x.dtype)
    run_rows(x.dev, kernel(x.dev, FAMILY, "bn_stats", x.dtype), c, x.buf, mean.buf, var.buf, i32(n), i32(c), i32(s))
    return mean, var


def batch_norm(x: CLArray, running_mean: CLArray, running_var: CLArray, weight: Optional[CLArray] = None,
               bias: Optional[CLArray] = None, *, training: bool, momentum: float, eps: float):
    """y, or (y, new_running_mean, new_running_var) in training."""
    dev = x.dev
    n, c, s = _layout(x)
    mean, var = batch_stats(x) if training else (running_mean, running_var)
    y = empty(dev, x.shape, x.dtype)
    run_1d(dev, kernel(dev, FAMILY, "bn_apply", x.dtype), x.size, x.buf, y.buf, mean.buf, var.buf,
           (weight if weight is not None else mean).buf, (bias if bias is not None else mean).buf,
           i32(weight is not None), i32(bias is not None), scalar(eps, x.dtype), i32(c), i32(s), i32(x.size))
    if not training:
        return y
    count = n * s
    new_m, new_v = empty(dev, (c,), x.dtype), empty(dev, (c,), x.dtype)
    run_1d(dev, kernel(dev, FAMILY, "bn_running", x.dtype), c, running_mean.buf, running_var.buf, mean.buf, var.buf,
           new_m.buf, new_v.buf, scalar(momentum, x.dtype), scalar(count / (count - 1), x.dtype), i32(c))
    return y, new_m, new_v


def batch_norm_backward(x: CLArray, dy: CLArray, running_mean: CLArray, running_var: CLArray,
                        weight: Optional[CLArray] = None, *, training: bool, eps: float):
    """(dx, dweight, dbias); training differentiates through the batch statistics."""
    dev = x.dev
    n, c, s = _layout(x)
    mean, var = batch_stats(x) if training else (running_mean, running_var)
    dweight, dbias = empty(dev, (c,), x.dtype), empty(dev, (c,), x.dtype)
    run_rows(dev, kernel(dev, FAMILY, "bn_backward_reduce", x.dtype), c, x.buf, dy.buf, mean.buf, var.buf,
             dweight.buf, dbias.buf, scalar(eps, x.dtype), i32(n), i32(c), i32(s))
    dx = empty(dev, x.shape, x.dtype)
    run_1d(dev, kernel(dev, FAMILY, "bn_backward_dx", x.dtype), x.size, x.buf, dy.buf, mean.buf, var.buf,
           (weight if weight is not None else mean).buf, i32(weight is not None), dweight.buf, dbias.buf,
           scalar(eps, x.dtype), i32(int(training)), i32(n * s), i32(c), i32(s), i32(x.size), dx.buf)
    return dx, dweight, dbias


def _ln_layout(x: CLArray, normalized_shape: tuple) -> tuple[int, int]:
    m = math.prod(normalized_shape)
    return x.size // m, m


def layer_norm(x: CLArray, weight: Optional[CLArray] = None, bias: Optional[CLArray] = None, *,
               normalized_shape: tuple, eps: float) -> CLArray:
    """(x - mean) / sqrt(var + eps) * weight + bias per row, one work-group per row."""
    dev = x.dev
    rows, m = _ln_layout(x, normalized_shape)
    y = empty(dev, x.shape, x.dtype)
    run_rows(dev, kernel(dev, FAMILY, "ln_forward", x.dtype), rows, x.buf, y.buf,
             (weight if weight is not None else x).buf, (bias if bias is not None else x).buf,
             i32(weight is not None), i32(bias is not None), scalar(eps, x.dtype), i32(m), want=row_local(m))
    return y


def layer_norm_backward(x: CLArray, dy: CLArray, weight: Optional[CLArray] = None, *, normalized_shape: tuple,
                        eps: float):
    """(dx, dweight, dbias): dx one work-group per row (which also keeps the row statistics), then dweight and
    dbias one work-group per normalised element."""
    dev = x.dev
    rows, m = _ln_layout(x, normalized_shape)
    dx = empty(dev, x.shape, x.dtype)
    means, invs = empty(dev, (max(rows, 1),), x.dtype), empty(dev, (max(rows, 1),), x.dtype)
    run_rows(dev, kernel(dev, FAMILY, "ln_backward_dx", x.dtype), rows, x.buf, dy.buf,
             (weight if weight is not None else x).buf, i32(weight is not None), scalar(eps, x.dtype), i32(m),
             dx.buf, means.buf, invs.buf, want=row_local(m))
    dweight, dbias = empty(dev, normalized_shape, x.dtype), empty(dev, normalized_shape, x.dtype)
    run_rows(dev, kernel(dev, FAMILY, "ln_backward_params", x.dtype), m, x.buf, dy.buf, means.buf, invs.buf,
             dweight.buf, dbias.buf, i32(rows), i32(m), want=row_local(rows))
    return dx, dweight, dbias


KERNELS = {"batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward, "layer_norm": layer_norm,
           "layer_norm_backward": layer_norm_backward}
