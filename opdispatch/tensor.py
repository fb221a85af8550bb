"""The eager `Tensor`: a backend array plus its shape, dtype and device."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from .device import Device, current_placement
from .dtypes import FLOAT_DTYPES, as_dtype
from .errors import DTypeError


class Tensor:
    """An n-dimensional array on a device. Immutable: ops return new tensors.

    ``shape``, ``dtype`` (a NumPy dtype) and ``device`` describe it; ``numpy()`` copies it to the
    host; ``np.asarray(t)`` works; ``+ - * / @`` and unary ``-`` run the matching ops.
    """

    __slots__ = ("_data", "_shape", "_dtype", "_rt", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to our reflected operators: ndarray + Tensor -> Tensor

    _data: Any
    _shape: tuple[int, ...]
    _dtype: np.dtype

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("create tensors with od.tensor(data, dtype=None, device=None)")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """The element type, a NumPy dtype."""
        return self._dtype

    @property
    def device(self) -> Device:
        """The device holding the data."""
        return self._rt.device

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self._shape:
            n *= d
        return n

    @property
    def data(self) -> Any:
        """The backend's own array object (a NumPy array on ``numpy`` devices). Do not mutate it."""
        return self._data

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data on the host."""
        return self._rt.to_numpy(self._data, self._rt.device)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def to(self, device: Union[str, Device]) -> "Tensor":
        """This tensor's data on ``device`` (the same tensor when it is already there)."""
        from .registry import registry

        rt = registry().runtime(Device(device))
        if rt is self._rt:
            return self
        check_device_dtype(rt, self._dtype)
        return make(rt.from_numpy(self.numpy(), rt.device), self._shape, self._dtype, rt)

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self._dtype.name}, device={self._rt.device})"

    def __str__(self) -> str:
        return f"{self.numpy()} @ {self._rt.device}"

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    # operators: bound to the op functions at the bottom of this module
    def __add__(self, other: Any) -> "Tensor": return _api.add(self, other)
    def __radd__(self, other: Any) -> "Tensor": return _api.add(other, self)
    def __sub__(self, other: Any) -> "Tensor": return _api.sub(self, other)
    def __rsub__(self, other: Any) -> "Tensor": return _api.sub(other, self)
    def __mul__(self, other: Any) -> "Tensor": return _api.mul(self, other)
    def __rmul__(self, other: Any) -> "Tensor": return _api.mul(other, self)
    def __truediv__(self, other: Any) -> "Tensor": return _api.div(self, other)
    def __rtruediv__(self, other: Any) -> "Tensor": return _api.div(other, self)
    def __matmul__(self, other: Any) -> "Tensor": return _api.matmul(self, other)
    def __rmatmul__(self, other: Any) -> "Tensor": return _api.matmul(other, self)
    def __neg__(self) -> "Tensor": return _api.neg(self)


_new = object.__new__


def make(data: Any, shape: tuple[int, ...], dtype: np.dtype, rt: Any) -> Tensor:
    """Wrap a backend array whose shape and dtype are already known (no checks: hot path)."""
    t = _new(Tensor)
    t._data = data
    t._shape = shape
    t._dtype = dtype
    t._rt = rt
    return t


def check_device_dtype(rt: Any, dtype: np.dtype) -> None:
    """Raise `DTypeError` when a float ``dtype`` is not supported by the device of ``rt``."""
    if dtype.kind == "f" and dtype not in rt.info.dtype_set:
        raise DTypeError(f"tensor: dtype {dtype.name} is not supported on device {rt.device}; allowed there: "
                         f"{sorted(d.name for d in rt.info.dtype_set)}")


def host_array(data: Any, dtype: Any = None, op: str = "tensor", arg: str = "data") -> np.ndarray:
    """``data`` as a NumPy array of numbers (floats, ints or bools) in native byte order, or a `DTypeError`."""
    try:
        arr = np.asarray(data, dtype=None if dtype is None else as_dtype(dtype))
    except OverflowError as exc:
        raise DTypeError(f"{op}: argument {arg!r} got a number out of range for "
                         f"{'any NumPy dtype' if dtype is None else as_dtype(dtype).name} ({exc}); "
                         f"allowed: numbers that fit the input dtype") from None
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{op}: argument {arg!r} got {type(data).__name__} that is not array-like ({exc}); "
                         f"allowed: a tensor, a NumPy array, a number or a nested sequence of numbers") from None
    if not arr.dtype.isnative:  # big-endian data from a file: backends receive native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind not in "fiub" or (arr.dtype.kind == "f" and arr.dtype not in FLOAT_DTYPES):
        raise DTypeError(f"{op}: argument {arg!r} got dtype {arr.dtype}; allowed: "
                         f"{', '.join(d.name for d in FLOAT_DTYPES)}, integer or bool data")
    return arr


def tensor(data: Any, dtype: Any = None, device: Union[str, Device, None] = None) -> Tensor:
    """Build a tensor from array-like ``data`` (copied) on ``device`` (default: the current device).

    ``dtype`` defaults to NumPy's choice (float64 for Python floats, int64 for ints).
    """
    from .registry import registry

    rt = registry().runtime(current_placement().device if device is None else Device(device))
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = host_array(data, dtype)
    check_device_dtype(rt, arr.dtype)
    return make(rt.from_numpy(arr, rt.device), arr.shape, arr.dtype, rt)


from . import api as _api  # noqa: E402  (the op functions use Tensor; bind operators last)
