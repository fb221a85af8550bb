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


def tap(xp: np.ndarray, i: int, j: int, stride, dilation, out_hw) -> np.ndarray:
    """The strided slice (N, C, OH, OW) of ``xp`` seen by kernel tap (i, j)."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return xp[:, :, h0:h0 + stride[0] * (out_hw[0] - 1) + 1:stride[0],
              w0:w0 + stride[1] * (out_hw[1] - 1) + 1:stride[1]]
