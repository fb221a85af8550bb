"""The backend's array: a device buffer plus shape and dtype, and the host transfers.

Tensors are immutable, so views that keep the row-major order (reshape, flatten) share the
buffer. Data moves between host and device only in `from_numpy` and `to_numpy`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .runtime import DeviceState, check_size, state


class CLArray:
    """A C-contiguous array in an OpenCL buffer on one device."""

    __slots__ = ("buf", "shape", "dtype", "dev", "size")

    def __init__(self, buf: Any, shape: Sequence[int], dtype: Any, dev: DeviceState) -> None:
        self.buf = buf
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.dev = dev
        self.size = math.prod(self.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the data in bytes."""
        return self.size * self.dtype.itemsize

    def view(self, shape: Sequence[int]) -> "CLArray":
        """The same buffer under another shape with as many elements."""
        return CLArray(self.buf, shape, self.dtype, self.dev)

    def __repr__(self) -> str:
        return f"CLArray(shape={self.shape}, dtype={self.dtype.name}, device={self.dev.label})"


def empty(dev: DeviceState, shape: Sequence[int], dtype: Any) -> CLArray:
    """An uninitialised array on ``dev``."""
    size = math.prod(shape)
    check_size(size)
    return CLArray(dev.alloc(size * np.dtype(dtype).itemsize), shape, dtype, dev)


def from_numpy(array: np.ndarray, index: int) -> CLArray:
    """Copy a host array to device ``opencl:index``."""
    import pyopencl as cl

    host = np.asarray(array, order="C")  # ascontiguousarray would make 0-d arrays 1-d
    dev = state(index)
    out = empty(dev, host.shape, host.dtype)
    if host.size:
        with dev.lock:
            cl.enqueue_copy(dev.queue, out.buf, host)
    return out


def to_numpy(data: CLArray) -> np.ndarray:
    """Copy a device array to a fresh host array (waits for the kernels that write it)."""
    import pyopencl as cl

    host = np.empty(data.shape, dtype=data.dtype)
    if host.size:
        with data.dev.lock:
            cl.enqueue_copy(data.dev.queue, host, data.buf)
    return host


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides, in elements."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def broadcast_strides(shape: Sequence[int], target: Sequence[int]) -> tuple[int, ...]:
    """Element strides that read an array of ``shape`` as ``target`` (NumPy broadcasting: 0 on
    broadcast dimensions)."""
    lead = len(target) - len(shape)
    own = contiguous_strides(shape)
    return tuple(0 if i < lead or shape[i - lead] == 1 else own[i - lead] for i in range(len(target)))


MAX_RANK = 8


def collapse(shape: Sequence[int], *strides: Sequence[int]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """Merge adjacent dimensions that every stride set walks contiguously and drop size-1 ones;
    return the (at most `MAX_RANK`) dimensions and stride sets, padded in front to `MAX_RANK`."""
    dims: list[int] = []
    sets: list[list[int]] = [[] for _ in strides]
    for axis, d in enumerate(shape):
        if d == 1:
            continue
        if dims and all(s[-1] == st[axis] * d for s, st in zip(sets, strides)):
            dims[-1] *= d
            for s, st in zip(sets, strides):
                s[-1] = st[axis]
            continue
        dims.append(d)
        for s, st in zip(sets, strides):
            s.append(st[axis])
    if len(dims) > MAX_RANK:
        from .errors import OpenCLUnsupportedError

        from .errors import current_op

        raise OpenCLUnsupportedError(f"{current_op()}: a strided access of {len(dims)} irreducible dimensions; "
                                     f"the OpenCL backend handles at most {MAX_RANK}")
    pad = MAX_RANK - len(dims)
    return (1,) * pad + tuple(dims), [(0,) * pad + tuple(s) for s in sets]


def int8(values: Sequence[int]) -> Any:
    """An OpenCL ``int8`` vector argument."""
    import pyopencl.cltypes as ct

    return ct.make_int8(*[int(v) for v in values])
