"""Scratch buffers reused across kernel calls, per thread.

A fresh large array costs a page fault per 4 KiB page the first time it is written (here about
as much as the copy itself), so the im2col columns and padded inputs of the conv kernels live
in buffers that are kept between calls. A scratch array is valid until the next request for the
same tag on the same thread; a kernel must never return one (or a view of one).

The kernels size their scratch with `work_chunks` (batch chunks, or bands of output rows when one
sample is too large) and, before a large call, check with `check_fits` that its outputs and new
scratch fit in the memory available (`NumPyOutOfMemoryError` if not).
"""

from __future__ import annotations

import os
import threading
from typing import Optional

import numpy as np
from opdispatch.errors import KernelError

LIMIT_BYTES = 1 << 30  # larger requests get a fresh array instead of pinning that much memory
CHUNK_BYTES = 32 << 20  # kernels work on batch chunks (or bands of output rows) whose scratch stays under this
CHECK_BYTES = 256 << 20  # a call that allocates more than this first checks that it fits in the memory available
_LOCAL = threading.local()


class NumPyOutOfMemoryError(KernelError, MemoryError):
    """A kernel's outputs and workspace would not fit in the memory available: refused before any of it
    is allocated (rather than failing, or being killed by the OS, half way)."""


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


def work_chunks(n: int, rows: int, bytes_per_row: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """``[(start, stop, bands), ...]`` covering ``range(n)`` samples, each with the bands ``[(r0, r1),
    ...]`` covering its ``rows`` output rows, so that the scratch of one band of one chunk
    (``bytes_per_row`` per sample and output row) stays under `CHUNK_BYTES`: whole samples, several per
    chunk, while one sample's scratch fits; else one sample per chunk, in bands of output rows (one
    row at least). Peak memory stays bounded whatever the batch and the image size."""
    per_sample = int(bytes_per_row) * rows
    if per_sample <= CHUNK_BYTES or rows <= 1:
        return [(n0, n1, [(0, rows)]) for n0, n1 in batch_chunks(n, per_sample)]
    per = max(1, CHUNK_BYTES // max(int(bytes_per_row), 1))
    bands = [(r, min(r + per, rows)) for r in range(0, rows, per)]
    return [(i, i + 1, bands) for i in range(n)]


def largest_band(chunks: list[tuple[int, int, list[tuple[int, int]]]]) -> tuple[int, int]:
    """(samples, output rows) of the largest band of `work_chunks`' plan: what its scratch is sized for."""
    return max(((n1 - n0, r1 - r0) for n0, n1, bands in chunks for r0, r1 in bands), default=(0, 0))


def new_bytes(tag: str, nbytes: int) -> int:
    """How much of a `scratch` request of ``nbytes`` for ``tag`` is newly allocated (the rest is this
    thread's buffer, reused)."""
    if nbytes > LIMIT_BYTES:
        return int(nbytes)
    buf = getattr(_LOCAL, "buffers", {}).get(tag)
    return max(0, int(nbytes) - (0 if buf is None else int(buf.nbytes)))


def available_bytes() -> Optional[int]:
    """Memory this process may still allocate, in bytes: the kernel's MemAvailable, bounded by the
    cgroup's limit where there is one; None where neither can be read."""
    found: Optional[int] = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            found = None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                room = int(limit) - int(f.read().strip())
            found = room if found is None else min(found, room)
    except (OSError, ValueError):
        pass
    return found


def _gib(nbytes: int) -> str:
    return f"{nbytes / (1 << 30):.2f} GiB"


def check_fits(op: str, parts: dict[str, int]) -> None:
    """Raise `NumPyOutOfMemoryError` (naming ``op`` and each part) when the new allocations ``parts``
    (``{what: bytes}``) of one call add up to more than the memory available; calls under
    `CHECK_BYTES` are not checked (reading the system's counters costs more than they do)."""
    needed = sum(parts.values())
    if needed <= CHECK_BYTES:
        return
    room = available_bytes()
    if room is not None and needed > room:
        what = ", ".join(f"{name} {_gib(size)}" for name, size in parts.items() if size)
        raise NumPyOutOfMemoryError(f"{op}: the NumPy kernel needs {_gib(needed)} ({what}) but {_gib(room)} of "
                                    f"memory is available; allowed: calls that fit (a smaller batch or image)")
