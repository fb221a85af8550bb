"""Output-size rules and window geometry for windowed ops, shared by shape inference, the
reference and backends.

Backend authors call these instead of re-deriving the rules, so every backend agrees
with the schema on the output size (and, for `valid_taps`, on which input each window tap reads).
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

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


def tap_range(size: int, out: int, offset: int, stride: int) -> Optional[tuple[slice, slice]]:
    """Along one axis, for a kernel tap that output ``a`` reads at input index ``a * stride + offset``
    (``offset``: the tap's offset in the window minus the leading padding): the slice of outputs whose
    read lands inside the input of ``size``, and the input slice it reads for them; None when every
    read of the tap lands in the padding (or past the input, ceil_mode's overhang)."""
    a0 = max(0, -(offset // stride))                  # the first a with a * stride + offset >= 0
    a1 = min(out, (size - 1 - offset) // stride + 1)  # past the last a with a * stride + offset < size
    if a1 <= a0:
        return None
    start = a0 * stride + offset
    return slice(a0, a1), slice(start, start + (a1 - a0 - 1) * stride + 1, stride)


def valid_taps(hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair
               ) -> Iterator[tuple[int, int, tuple, tuple]]:
    """For each kernel tap (i, j), row-major, that reads some real input element: ``(i, j, out_index,
    in_index)``, the index of the (N, C, OH, OW) outputs whose tap reads inside the unpadded input and of
    the (N, C, H, W) input elements it reads for them (strided slices of the same shape). Taps that read
    padding are left out: pooling never materialises a padded copy of its input."""
    rows = [tap_range(hw[0], out_hw[0], i * dilation[0] - padding[0][0], stride[0]) for i in range(kernel[0])]
    cols = [tap_range(hw[1], out_hw[1], j * dilation[1] - padding[1][0], stride[1]) for j in range(kernel[1])]
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            if r is not None and q is not None:
                yield i, j, (Ellipsis, r[0], q[0]), (Ellipsis, r[1], q[1])
