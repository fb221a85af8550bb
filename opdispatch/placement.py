"""Where calls run: the current device and fallback policy (``with od.device(...)``, per thread and
asyncio task through contextvars), and the log of visible placement decisions."""

from __future__ import annotations

import contextvars
import warnings
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

from .device import DEFAULT_BACKEND, Device
from .errors import InvalidArgumentError, PlacementWarning
from .registry import registry

FALLBACK_POLICIES = ("error", "warn", "record")
DEFAULT_DEVICE = Device(DEFAULT_BACKEND, 0)


class Placement(NamedTuple):
    """The current device and the fallback policy for calls that device cannot run."""

    device: Device
    fallback: str


_PLACEMENT: contextvars.ContextVar[Placement] = contextvars.ContextVar(
    "opdispatch_placement", default=Placement(DEFAULT_DEVICE, "error"))  # noqa: B039 - a NamedTuple, immutable


def current_placement() -> Placement:
    """The placement in force in this thread / asyncio task."""
    return _PLACEMENT.get()


def get_device() -> Device:
    """The current default device (``numpy:0`` when nothing is set)."""
    return _PLACEMENT.get().device


class device:  # noqa: N801 - a context manager used like a function: ``with od.device("numpy:0"):``
    """Run tensor creation and ops without tensor inputs on ``spec`` inside the ``with`` block.

    ``fallback`` says what happens when an op cannot run where it is placed (no kernel or
    decomposition for its dtype or attributes) or its inputs live on different devices: ``"error"``
    (default) raises; ``"warn"`` runs it on another device that can, copying data, and warns
    (`od.PlacementWarning`); ``"record"`` does the same silently. Both keep a record, readable
    with ``od.placement_log()``. ``spec=None`` keeps the current device and only sets the policy.
    Nests; separate per thread and per asyncio task.
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
        registry().runtime(self.placement.device)  # unknown or unavailable device: fail here
        self._tokens.append(_PLACEMENT.set(self.placement))
        return self.placement.device

    def __exit__(self, *exc: object) -> None:
        _PLACEMENT.reset(self._tokens.pop())


@dataclass(frozen=True)
class PlacementEvent:
    """One visible placement decision taken under a fallback policy."""

    op: str
    requested: Device
    ran_on: Device
    reason: str

    def __str__(self) -> str:
        return f"{self.op}: asked for {self.requested}, ran on {self.ran_on} ({self.reason})"


_LOG: deque = deque(maxlen=10_000)


def placement_log() -> list[PlacementEvent]:
    """Placement decisions taken under ``fallback='warn'`` or ``'record'`` (oldest first)."""
    return list(_LOG)


def clear_placement_log() -> None:
    """Forget the recorded placement decisions."""
    _LOG.clear()


def report(placement: Placement, event: PlacementEvent, stacklevel: int = 4) -> None:
    """Log ``event`` (and warn under ``fallback='warn'``)."""
    _LOG.append(event)
    if placement.fallback == "warn":
        warnings.warn(str(event), PlacementWarning, stacklevel=stacklevel)
