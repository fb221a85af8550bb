"""`FakeArray`: the fake device's own array type."""

from __future__ import annotations

import numpy as np

# How many times data crossed between the host and the device (tests read these).
TRANSFERS = {"from_numpy": 0, "to_numpy": 0}


class FakeArray:
    """Device memory of ``fake:<index>``: a private NumPy buffer that NumPy cannot see directly.

    It deliberately has no ``__array__``-style conversion that works: code that reaches into a
    backend array instead of calling the plugin's ``opdispatch_to_numpy`` hook fails loudly.
    """

    __slots__ = ("_buf", "index")

    def __init__(self, buf: np.ndarray, index: int = 0) -> None:
        if not isinstance(buf, np.ndarray):
            raise TypeError(f"FakeArray wraps a numpy.ndarray, got {type(buf).__name__}")
        self._buf = buf
        self.index = index

    @property
    def shape(self) -> tuple[int, ...]:
        return self._buf.shape

    @property
    def dtype(self) -> np.dtype:
        return self._buf.dtype

    def __array__(self, *args, **kwargs):
        raise TypeError("FakeArray lives on the fake device; copy it to the host with opdispatch_to_numpy")

    def __repr__(self) -> str:
        return f"FakeArray(shape={self.shape}, dtype={self.dtype.name}, device=fake:{self.index})"


def unwrap(value: object, op: str) -> np.ndarray:
    """The buffer of a kernel argument, which must be a FakeArray of float32."""
    if not isinstance(value, FakeArray):
        raise TypeError(f"fake {op} kernel got {type(value).__name__}; allowed: FakeArray")
    if value.dtype != np.float32:
        raise TypeError(f"fake {op} kernel got dtype {value.dtype}; allowed: float32")
    return value._buf


def wrap(result: object, like: FakeArray) -> FakeArray:
    """A FakeArray on the device of ``like`` holding ``result`` (NumPy 0-d results included)."""
    return FakeArray(np.asarray(result, dtype=np.float32), like.index)
