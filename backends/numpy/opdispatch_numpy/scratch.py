"""Scratch buffers reused across kernel calls, per thread.

A fresh large array costs a page fault per 4 KiB page the first time it is written (here about
as much as the copy itself), so the im2col columns and padded inputs of the conv kernels live
in buffers that are kept between calls. A scratch array is valid until the next request for the
same tag on the same thread; a kernel must never return one (or a view of one).
"""

from __future__ import annotations

import threading

import numpy as np

LIMIT_BYTES = 1 << 30  # larger requests get a fresh array instead of pinning that much memory
CHUNK_BYTES = 32 << 20  # kernels work on batch chunks whose scratch stays under this
_LOCAL = threading.local()


def scratch(tag: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` backed by this thread's buffer ``tag``."""
    dtype = np.dtype(dtype)
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * dtype.itemsize
    if nbytes > LIMIT_BYTES:
        return np.empty(shape, dtype)
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    buf = buffers.get(tag)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[tag] = np.empty(max(nbytes, 1), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def zeros(tag: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """`scratch`, zero-filled."""
    out = scratch(tag, shape, dtype)
    out.fill(0)
    return out


def clear() -> None:
    """Release this thread's scratch buffers."""
    _LOCAL.buffers = {}


def batch_chunks(n: int, bytes_per_sample: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks whose scratch (``bytes_per_sample``
    each) stays under `CHUNK_BYTES` (one sample at least): peak memory stays bounded whatever
    the batch, and each chunk's columns are still warm in cache when the GEMM reads them."""
    per = max(1, CHUNK_BYTES // max(int(bytes_per_sample), 1))
    return [(i, min(i + per, n)) for i in range(0, n, per)]
