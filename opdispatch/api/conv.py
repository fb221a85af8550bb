"""Public functions of the conv family."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike, Pair, Padding

__all__ = ["conv2d"]


def conv2d(x: ArrayLike, w: ArrayLike, bias: ArrayLike = None, *, stride: Pair = 1, padding: Padding = 0,
           dilation: Pair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), w (C_out, C/groups, KH, KW), optional bias (C_out,).

    ``padding`` is an int, an (ph, pw) pair, ((top, bottom), (left, right)), "VALID" or "SAME"
    (TensorFlow's rule: output ceil(in / stride), an odd extra row/column at the bottom/right).
    """
    return run(OPS["conv2d"], (x, w, bias),
               {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})
