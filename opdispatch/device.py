"""`Device`: a value object naming one device of one backend (``numpy:0``)."""

from __future__ import annotations

from typing import Any, Optional, Union

from .errors import DeviceError

CPU_ALIAS = "cpu"
DEFAULT_BACKEND = "numpy"


class Device:
    """A device: a backend name and an index. ``str(d) == "numpy:0"``; ``Device("opencl:0")`` parses.

    ``"cpu"`` (or ``"cpu:0"``) is an alias of the default CPU device (``numpy:0``); a name without an
    index means 0.
    """

    __slots__ = ("backend", "index", "_str")

    backend: str
    index: int
    _str: str

    def __init__(self, spec: Union[str, "Device"], index: Optional[int] = None) -> None:
        if isinstance(spec, Device):
            backend, idx = spec.backend, spec.index
        elif isinstance(spec, str):
            backend, idx = _parse(spec)
        else:
            raise DeviceError(f"Device: argument 'spec' got {spec!r}; allowed: a string such as 'numpy:0' or a Device")
        if index is not None:
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise DeviceError(f"Device: argument 'index' got {index!r}; allowed: an int >= 0")
            idx = index
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "index", idx)
        object.__setattr__(self, "_str", f"{backend}:{idx}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Device is immutable")

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"Device({self._str!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return self._str == other._str
        if isinstance(other, str):
            try:
                return self._str == Device(other)._str
            except DeviceError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._str)

    def __reduce__(self):
        return (Device, (self._str,))


def _parse(spec: str) -> tuple[str, int]:
    text = spec.strip().lower()
    if text in (CPU_ALIAS, CPU_ALIAS + ":0"):
        return DEFAULT_BACKEND, 0
    name, sep, idx = text.partition(":")
    if name == CPU_ALIAS:
        raise DeviceError(f"Device: argument 'spec' got {spec!r}; allowed: 'cpu' or 'cpu:0' (the alias of "
                          f"{DEFAULT_BACKEND}:0; no backend is named 'cpu'), or 'backend:N'")
    if not name or not name.replace("_", "").replace("-", "").isalnum() or (sep and not idx.isdigit()):
        raise DeviceError(f"Device: argument 'spec' got {spec!r}; allowed: 'backend' or 'backend:N' "
                          f"(e.g. 'numpy:0', 'opencl:1') or 'cpu'")
    return name, int(idx) if sep else 0


DEFAULT_DEVICE = Device(DEFAULT_BACKEND, 0)
