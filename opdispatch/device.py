"""`Device` values, the current-device context (contextvars) and its fallback policy."""

from __future__ import annotations

import contextvars
from typing import Any, NamedTuple, Optional, Union

from .errors import DeviceError, InvalidArgumentError

CPU_ALIAS = "cpu"
DEFAULT_BACKEND = "numpy"
FALLBACK_POLICIES = ("error", "warn", "record")


class Device:
    """A device: a backend name and an index. ``str(d) == "numpy:0"``; ``Device("opencl:0")`` parses.

    ``"cpu"`` is an alias of the default CPU device (``numpy:0``); a name without an index means 0.
    """

    __slots__ = ("backend", "index", "_str")

    backend: str
    index: int

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
    if text == CPU_ALIAS:
        return DEFAULT_BACKEND, 0
    name, sep, idx = text.partition(":")
    if not name or not name.replace("_", "").replace("-", "").isalnum() or (sep and not idx.isdigit()):
        raise DeviceError(f"Device: argument 'spec' got {spec!r}; allowed: 'backend' or 'backend:N' "
                          f"(e.g. 'numpy:0', 'opencl:1') or 'cpu'")
    return name, int(idx) if sep else 0


DEFAULT_DEVICE = Device(DEFAULT_BACKEND, 0)


class Placement(NamedTuple):
    """The current device and the fallback policy for calls that device cannot run."""

    device: Device
    fallback: str


_PLACEMENT: contextvars.ContextVar[Placement] = contextvars.ContextVar(
    "opdispatch_placement", default=Placement(DEFAULT_DEVICE, "error"))


def current_placement() -> Placement:
    """The placement in force in this thread / asyncio task."""
    return _PLACEMENT.get()


def get_device() -> Device:
    """The current default device (``numpy:0`` when nothing is set)."""
    return _PLACEMENT.get().device


class device:  # noqa: N801 - a context manager used like a function: ``with od.device("numpy:0"):``
    """Run tensor creation and ops without tensor inputs on ``spec`` inside the ``with`` block.

    ``fallback`` says what happens when an op cannot run where it is placed (no kernel for its
    dtype or attributes) or its inputs live on different devices: ``"error"`` (default) raises;
    ``"warn"`` runs it on another device that can, copying data, and warns
    (`od.PlacementWarning`); ``"record"`` does the same silently. Both keep a record,
    readable with ``od.placement_log()``. ``spec=None`` keeps the current device and only sets
    the policy. Nests; separate per thread and per asyncio task.
    """

    def __init__(self, spec: Union[str, Device, None], *, fallback: Optional[str] = None) -> None:
        outer = _PLACEMENT.get()
        dev = outer.device if spec is None else Device(spec)
        if fallback is not None and fallback not in FALLBACK_POLICIES:
            raise InvalidArgumentError(f"device: argument 'fallback' got {fallback!r}; allowed: "
                                       f"{', '.join(map(repr, FALLBACK_POLICIES))}")
        self.placement = Placement(dev, fallback or outer.fallback)
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> Device:
        from .registry import registry  # the registry sits above this module

        registry().runtime(self.placement.device)  # unknown or unavailable device: fail here
        self._tokens.append(_PLACEMENT.set(self.placement))
        return self.placement.device

    def __exit__(self, *exc: object) -> None:
        _PLACEMENT.reset(self._tokens.pop())
