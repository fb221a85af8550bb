"""Padding and strided window views shared by the conv and pooling kernels, and the per-tap valid ranges
with which pooling reads the unpadded input."""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .scratch import scratch


def pad_hw(x: np.ndarray, pads, fill: float = 0.0, extra=(0, 0), scratch_tag: Optional[str] = None) -> np.ndarray:
    """``x`` (N, C, H, W) padded by ((top, bottom), (left, right)) plus ``extra`` rows/columns at the
    bottom/right, filled with ``fill``; ``x`` itself when there is nothing to add. With
    ``scratch_tag`` the result lives in that scratch buffer (see `scratch`): never return it."""
    (pt, pb), (pl, pr) = pads
    pb += extra[0]
    pr += extra[1]
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    shape = (n, c, h + pt + pb, w + pl + pr)
    out = np.empty(shape, dtype=x.dtype) if scratch_tag is None else scratch(scratch_tag, shape, x.dtype)
    # fill only the border, then copy the interior once
    out[:, :, :pt] = fill
    out[:, :, pt + h:] = fill
    out[:, :, pt:pt + h, :pl] = fill
    out[:, :, pt:pt + h, pl + w:] = fill
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def windows(xp: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """Read-only view (N, C, KH, KW, OH, OW) of every window tap of padded ``xp``."""
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.strides
    # a stride with one output, or a dilation with one tap, is never stepped: keep byte strides small
    stride = tuple(s if o > 1 else 1 for s, o in zip(stride, out_hw))
    dilation = tuple(d if k > 1 else 1 for d, k in zip(dilation, kernel))
    return as_strided(xp, shape=(n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
                      strides=(s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1]),
                      writeable=False)


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


def valid_taps(hw, out_hw, kernel, stride, padding, dilation):
    """For each kernel tap (i, j), row-major, that reads some real input element: ``(i, j, out_index,
    in_index)``, the index of the (N, C, OH, OW) outputs whose tap reads inside the unpadded input and of
    the (N, C, H, W) input elements it reads for them (strided slices, same shape). Window taps that read
    padding are left out, so no padded copy of the input is ever made."""
    rows = [tap_range(hw[0], out_hw[0], i * dilation[0] - padding[0][0], stride[0]) for i in range(kernel[0])]
    cols = [tap_range(hw[1], out_hw[1], j * dilation[1] - padding[1][0], stride[1]) for j in range(kernel[1])]
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            if r is not None and q is not None:
                yield i, j, (Ellipsis, r[0], q[0]), (Ellipsis, r[1], q[1])


def tap(xp: np.ndarray, i: int, j: int, stride, dilation, out_hw) -> np.ndarray:
    """The strided slice (N, C, OH, OW) of ``xp`` seen by kernel tap (i, j)."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return xp[:, :, h0:h0 + stride[0] * (out_hw[0] - 1) + 1:stride[0],
              w0:w0 + stride[1] * (out_hw[1] - 1) + 1:stride[1]]
