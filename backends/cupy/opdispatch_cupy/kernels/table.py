"""The op -> kernel table and the `Kernel` declarations built from it (no CuPy import here)."""

from __future__ import annotations

from typing import Callable, Sequence

from opdispatch.backend import Kernel

from ..xp import kernel
from . import conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES: tuple[str, ...] = ("float16", "float32", "float64")
"""What every kernel computes in (float16 through float32, see `opdispatch_cupy.xp.kernel`)."""


def kernel_functions() -> dict[str, Callable[..., object]]:
    """Every op's kernel function, unwrapped (written against ``xp``)."""
    return {
        "conv2d": conv.conv2d, "conv2d_bias_relu": conv.conv2d_bias_relu, "conv2d_backward_input": conv.conv2d_backward_input,
        "conv2d_backward_weight": conv.conv2d_backward_weight,
        "max_pool2d": pool.max_pool2d, "max_pool2d_backward": pool.max_pool2d_backward,
        "avg_pool2d": pool.avg_pool2d, "avg_pool2d_backward": pool.avg_pool2d_backward,
        "batch_norm": norm.batch_norm, "batch_norm_backward": norm.batch_norm_backward,
        "matmul": linalg.matmul,
        "softmax": nn.softmax, "log_softmax": nn.log_softmax, "softmax_cross_entropy": nn.softmax_cross_entropy,
        "softmax_cross_entropy_backward": nn.softmax_cross_entropy_backward,
        **elementwise.KERNELS, **reduce.KERNELS, **layout.KERNELS,
    }


def kernels(dtypes: Sequence[str] = DTYPES) -> list[Kernel]:
    """One `Kernel` per op, each wrapped for device selection and float16 (sorted by op)."""
    return [Kernel(op, kernel(fn), dtypes=tuple(dtypes)) for op, fn in sorted(kernel_functions().items())]
