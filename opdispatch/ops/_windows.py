"""Window taps written with ops, for the decompositions of convolution and pooling: the input is
padded (with the padding, plus whatever ceil_mode's last window overhangs), then each kernel tap
is one strided slice of it."""

from __future__ import annotations

from typing import Any

from .layout import slice_adjoint


def padded_shape(x_shape: tuple, kernel: tuple, stride: tuple, dilation: tuple, pads: tuple, out_hw: tuple) -> tuple:
    """The (N, C, H', W') shape the taps are cut from, and the (bottom, right) overhang it adds."""
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = pads
    need_h = (out_hw[0] - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
    need_w = (out_hw[1] - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1
    extra = (max(need_h - (h + pt + pb), 0), max(need_w - (w + pl + pr), 0))
    return (n, c, h + pt + pb + extra[0], w + pl + pr + extra[1]), extra


def tap_starts(kernel: tuple, dilation: tuple) -> list[tuple[int, int]]:
    """The (row, column) offset of each kernel tap in the padded input, row-major."""
    return [(i * dilation[0], j * dilation[1]) for i in range(kernel[0]) for j in range(kernel[1])]


def window_taps(F: Any, x: Any, kernel: tuple, stride: tuple, dilation: tuple, pads: tuple, out_hw: tuple,
                fill: float = 0.0) -> list:
    """One (N, C, OH, OW) tensor per kernel tap (row-major): what that tap sees at every output position."""
    shape, extra = padded_shape(x.shape, kernel, stride, dilation, pads, out_hw)
    (pt, pb), (pl, pr) = pads
    widths = ((pt, pb + extra[0]), (pl, pr + extra[1]))
    xp = F.pad(x, widths, value=fill) if any(any(p) for p in widths) else x
    oh, ow = out_hw
    return [F.slice(xp, starts=(r, q), ends=(r + stride[0] * (oh - 1) + 1, q + stride[1] * (ow - 1) + 1),
                    axes=(2, 3), steps=stride) for r, q in tap_starts(kernel, dilation)]


def stacked(F: Any, taps: list, axis: int) -> Any:
    """The taps stacked along a new ``axis`` (of size len(taps)), by reshape and concat."""
    shape = taps[0].shape
    parts = [F.reshape(t, shape[:axis] + (1,) + shape[axis:]) for t in taps]
    return parts[0] if len(parts) == 1 else F.concat(parts, axis=axis)


def scatter_taps(F: Any, taps: list, x_shape: tuple, kernel: tuple, stride: tuple, dilation: tuple, pads: tuple,
                 out_hw: tuple) -> Any:
    """The adjoint of `window_taps`: each tap's (N, C, OH, OW) values added back where that tap read the
    padded input (slice adjoints), the padding then cropped away; the result has ``x_shape``."""
    padded, _ = padded_shape(x_shape, kernel, stride, dilation, pads, out_hw)
    total = None
    for tap, (r, q) in zip(taps, tap_starts(kernel, dilation)):
        part = slice_adjoint(F, tap, padded, (0, 0, r, q), (1, 1) + tuple(stride))
        total = part if total is None else total + part
    (pt, _), (pl, _) = pads
    return F.slice(total, starts=(pt, pl), ends=(pt + x_shape[2], pl + x_shape[3]), axes=(2, 3))
