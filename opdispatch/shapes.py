"""Output-size rules for windowed ops, shared by shape inference, the reference and backends.

Backend authors call these instead of re-deriving the rules, so every backend agrees
with the schema on the output size.
"""

from __future__ import annotations

import math

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]


def effective_kernel(k: int, dilation: int) -> int:
    """The span of a dilated kernel: ``dilation * (k - 1) + 1``."""
    return dilation * (k - 1) + 1


def same_padding(size: int, k: int, stride: int, dilation: int) -> Pair:
    """TensorFlow's SAME padding for one dimension: output ``ceil(size / stride)``;
    an odd total puts the extra element at the end (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: "str | Pads", hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pads:
    """Turn canonical padding (``'SAME'`` or explicit) into explicit ``((top, bottom), (left, right))``."""
    if padding == "SAME":
        return (same_padding(hw[0], kernel[0], stride[0], dilation[0]),
                same_padding(hw[1], kernel[1], stride[1], dilation[1]))
    return padding  # type: ignore[return-value]


def output_size(size: int, k: int, stride: int, pads: Pair, dilation: int = 1, ceil_mode: bool = False) -> int:
    """``floor((size + pad_total - dilation*(k-1) - 1) / stride) + 1``; with ``ceil_mode`` use ceil,
    dropping a last window that would start past the input and the leading padding (PyTorch's rule)."""
    span = size + pads[0] + pads[1] - effective_kernel(k, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = math.ceil(span / stride) + 1 if span >= 0 else span // stride + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


def output_hw(hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair = (1, 1),
              ceil_mode: bool = False) -> Pair:
    """`output_size` for both spatial dimensions."""
    return (output_size(hw[0], kernel[0], stride[0], pads[0], dilation[0], ceil_mode),
            output_size(hw[1], kernel[1], stride[1], pads[1], dilation[1], ceil_mode))


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> "tuple[int, ...] | None":
    """NumPy broadcasting of two shapes, or None when they do not broadcast."""
    if a == b:
        return a
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)
