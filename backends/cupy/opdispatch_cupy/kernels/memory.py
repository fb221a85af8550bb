"""Workspace sizing for the kernels whose scratch grows with the input times the kernel area (im2col):
batch chunks under a budget, and a check, before a large call allocates, that its outputs and
workspace fit in the memory the device has free (CuPy: the driver's free memory plus what CuPy's
pool holds unused; NumPy, in simulation: the host's available memory)."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Optional

from opdispatch.errors import KernelError

CHUNK_BYTES = 512 << 20
"""The im2col workspace one batch chunk may take (one sample at least)."""
CHECK_BYTES = 256 << 20
"""Calls that allocate less than this are not checked (asking the driver costs more than they do)."""


class CuPyOutOfMemoryError(KernelError, MemoryError):
    """A kernel's outputs and workspace would not fit in the device memory free: refused before any of
    it is allocated."""


def batch_chunks(n: int, bytes_per_sample: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks whose workspace (``bytes_per_sample``
    each) stays under `CHUNK_BYTES`, one sample at least."""
    per = max(1, CHUNK_BYTES // max(int(bytes_per_sample), 1))
    return [(i, min(i + per, n)) for i in range(0, n, per)]


def chunk_size(n: int, bytes_per_sample: int) -> int:
    """Samples in the largest chunk of `batch_chunks`."""
    return min(n, max(1, CHUNK_BYTES // max(int(bytes_per_sample), 1)))


def _host_available() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def available_bytes(xp: ModuleType) -> Optional[int]:
    """Bytes the current device can still give (None where that cannot be asked)."""
    if xp.__name__ != "cupy":
        return _host_available()
    try:
        free, _ = xp.cuda.runtime.memGetInfo()
        return int(free) + int(xp.get_default_memory_pool().free_bytes())
    except Exception:  # a driver that cannot say: do not refuse on a guess
        return None


def check_fits(op: str, xp: ModuleType, parts: dict[str, int]) -> None:
    """Raise `CuPyOutOfMemoryError` (naming ``op`` and each part) when the allocations ``parts``
    (``{what: bytes}``) of one call add up to more than the memory available."""
    needed = sum(parts.values())
    if needed <= CHECK_BYTES:
        return
    room = available_bytes(xp)
    if room is not None and needed > room:
        gib = 1 << 30
        what = ", ".join(f"{name} {size / gib:.2f} GiB" for name, size in parts.items() if size)
        where = "device" if xp.__name__ == "cupy" else "host"
        raise CuPyOutOfMemoryError(f"{op}: the CuPy kernel needs {needed / gib:.2f} GiB ({what}) but "
                                   f"{room / gib:.2f} GiB of {where} memory is free; allowed: calls that fit "
                                   f"(a smaller batch or image)")
