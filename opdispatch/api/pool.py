"""Public functions of the pool family."""

from __future__ import annotations

from typing import Optional

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike, Pair, Padding

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def max_pool2d(x: ArrayLike, kernel_size: Pair, *, stride: Optional[Pair] = None, padding: Padding = 0,
               dilation: Pair = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over windows of x (N, C, H, W); padding counts as -inf; stride None means kernel_size."""
    return run(OPS["max_pool2d"], (x,), {"kernel_size": kernel_size, "stride": stride, "padding": padding,
                                         "dilation": dilation, "ceil_mode": ceil_mode})


def avg_pool2d(x: ArrayLike, kernel_size: Pair, *, stride: Optional[Pair] = None, padding: Padding = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of x (N, C, H, W). With ``count_include_pad`` the divisor is the window
    clipped to the padded input, otherwise the number of real input elements in the window."""
    return run(OPS["avg_pool2d"], (x,), {"kernel_size": kernel_size, "stride": stride, "padding": padding,
                                         "ceil_mode": ceil_mode, "count_include_pad": count_include_pad})


def adaptive_avg_pool2d(x: ArrayLike, output_size: "int | tuple[Optional[int], Optional[int]]") -> Tensor:
    """Average pooling of x (N, C, H, W) to ``output_size`` (an int or (OH, OW); None keeps that axis's
    size) by PyTorch's rule: output i of an axis averages input [floor(i*in/out), ceil((i+1)*in/out)).
    (1, 1) is global average pooling; an output larger than the input repeats input elements."""
    return run(OPS["adaptive_avg_pool2d"], (x,), {"output_size": output_size})
