"""Element-wise kernels: unary maps and NumPy-broadcasting binary maps."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from .arrays import CLArray, broadcast_strides, collapse, contiguous_strides, empty, int8
from .launch import i32, kernel, run_1d, scalar
from .runtime import cl_type

FAMILY = "elementwise"
ROW_MIN = 32  # strided copies with runs and rows at least this long go one run per work-item


def _unary(name: str) -> Callable[[CLArray], CLArray]:
    def fn(x: CLArray) -> CLArray:
        out = empty(x.dev, x.shape, x.dtype)
        run_1d(x.dev, kernel(x.dev, FAMILY, name, x.dtype), x.size, x.buf, out.buf, i32(x.size))
        return out

    fn.__name__ = name.removesuffix("_k")
    fn.__doc__ = f"Element-wise {fn.__name__} on the device."
    return fn


def broadcast_shape(a: tuple, b: tuple) -> tuple:
    """NumPy broadcasting of two shapes (already validated by the schema)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(a, b))


def binary(name: str, a: CLArray, b: CLArray) -> CLArray:
    """Binary kernel ``name`` (e.g. ``add_k``) of ``a`` and ``b`` under NumPy broadcasting."""
    dev = a.dev
    shape = broadcast_shape(a.shape, b.shape)
    out = empty(dev, shape, a.dtype)
    n = out.size
    if a.shape == b.shape:
        run_1d(dev, kernel(dev, FAMILY, name + "_same", a.dtype), n, a.buf, b.buf, out.buf, i32(n))
        return out
    dims, (sa, sb) = collapse(shape, broadcast_strides(a.shape, shape), broadcast_strides(b.shape, shape))
    run_1d(dev, kernel(dev, FAMILY, name + "_bcast", a.dtype), n, a.buf, b.buf, out.buf, i32(n),
           int8(dims), int8(sa), int8(sb))
    return out


def _binary(name: str) -> Callable[[CLArray, CLArray], CLArray]:
    def fn(a: CLArray, b: CLArray) -> CLArray:
        return binary(name, a, b)

    fn.__name__ = name.removesuffix("_k")
    fn.__doc__ = f"Element-wise {fn.__name__} with NumPy broadcasting, on the device."
    return fn


def leaky_relu(x: CLArray, *, negative_slope: float) -> CLArray:
    """x where x > 0, else negative_slope * x."""
    out = empty(x.dev, x.shape, x.dtype)
    run_1d(x.dev, kernel(x.dev, FAMILY, "leaky_relu_k", x.dtype), x.size, x.buf, out.buf, i32(x.size),
           scalar(negative_slope, x.dtype))
    return out


def clip(x: CLArray, *, min: Optional[float], max: Optional[float]) -> CLArray:  # noqa: A002 - attribute names
    """np.clip's rule (NaN stays NaN, min > max gives max), None meaning unbounded."""
    out = empty(x.dev, x.shape, x.dtype)
    lo, hi = -math.inf if min is None else min, math.inf if max is None else max
    run_1d(x.dev, kernel(x.dev, FAMILY, "clip_k", x.dtype), x.size, x.buf, out.buf, i32(x.size),
           scalar(lo, x.dtype), scalar(hi, x.dtype))
    return out


_GELU = {"none": _unary("gelu_k"), "tanh": _unary("gelu_tanh_k")}


def gelu(x: CLArray, *, approximate: str) -> CLArray:
    """x * Phi(x), Phi by erf ('none') or PyTorch's tanh approximation ('tanh')."""
    return _GELU[approximate](x)


def relu_backward(dy: CLArray, x: CLArray) -> CLArray:
    """dy where x > 0, else 0."""
    return binary("relu_backward_k", dy, x)


def cast(x: CLArray, *, dtype: str) -> CLArray:
    """x's values in ``dtype`` (``cl/cast.cl``: NumPy's astype for values in range)."""
    out = empty(x.dev, x.shape, np.dtype(dtype))
    if x.size == 0:
        return out
    src, dst = cl_type(x.dtype), cl_type(dtype)
    options = f"-D SRC={src} -D DST={dst}" + (" -D TO_BOOL" if dtype == "bool" else "") + \
        (" -D USE_FP64" if "double" in (src, dst) else "") + (" -D SRC_HALF" if src == "half" else "") + \
        (" -D DST_HALF" if dst == "half" else "") + (" -D SRC_DOUBLE" if src == "double" else "")
    run_1d(x.dev, x.dev.kernel("cast", "cast_k", options), x.size, x.buf, out.buf, i32(x.size))
    return out


KERNELS = {name.removesuffix("_k"): _unary(name)
           for name in ("relu_k", "sigmoid_k", "tanh_k", "exp_k", "log_k", "sqrt_k", "neg_k", "abs_k", "erf_k",
                        "hardsigmoid_k", "hardswish_k")}
KERNELS.update({name.removesuffix("_k"): _binary(name)
                for name in ("add_k", "sub_k", "mul_k", "div_k", "pow_k", "maximum_k", "minimum_k")})
KERNELS["relu_backward"] = relu_backward
KERNELS["leaky_relu"] = leaky_relu
KERNELS["clip"] = clip
KERNELS["gelu"] = gelu
KERNELS["cast"] = cast

DTYPES: dict[str, tuple[str, ...]] = {"cast": ("float16", "float32", "float64", "int32", "int64", "bool")}
"""cast converts from these (to any of them)."""
__all__ = ["KERNELS", "binary", "contiguous_strides"]
