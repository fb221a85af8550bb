"""Public functions of the conv family."""

from __future__ import annotations

from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike, Pair, Padding

__all__ = ["conv2d", "conv_transpose2d"]


def conv2d(x: ArrayLike, w: ArrayLike, bias: ArrayLike = None, *, stride: Pair = 1, padding: Padding = 0,
           dilation: Pair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), w (C_out, C/groups, KH, KW), optional bias (C_out,).

    ``padding`` is an int, an (ph, pw) pair, ((top, bottom), (left, right)), "VALID" or "SAME"
    (TensorFlow's rule: output ceil(in / stride), an odd extra row/column at the bottom/right).
    """
    return run(OPS["conv2d"], (x, w, bias),
               {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})


def conv_transpose2d(x: ArrayLike, w: ArrayLike, bias: ArrayLike = None, *, stride: Pair = 1,
                     padding: Padding = 0, output_padding: Pair = 0, dilation: Pair = 1, groups: int = 1) -> Tensor:
    """Transposed convolution (PyTorch's ConvTranspose2d, the adjoint of conv2d in its input): x (N, C_in, H, W),
    w (C_in, C_out/groups, KH, KW), optional bias (C_out,). The output height is
    ``(H - 1) * stride - top - bottom + dilation * (KH - 1) + output_padding + 1`` (width alike).

    ``padding`` is an int, an (ph, pw) pair or explicit ((top, bottom), (left, right)) (rows/columns cropped
    from the full result); "SAME"/"VALID" are refused. ``output_padding`` adds rows/columns at the
    bottom/right; each must be smaller than the stride or the dilation on its axis.
    """
    return run(OPS["conv_transpose2d"], (x, w, bias),
               {"stride": stride, "padding": padding, "output_padding": output_padding, "dilation": dilation,
                "groups": groups})
