"""Recorders: objects that see every op call eagerly dispatched while they are active.

`GradientTape` is one (it records what it needs to differentiate); a graph tracer can be another.
Recorders live in a context variable, so they are per thread and per asyncio task. ``ACTIVE``
counts the recorders (and other contexts that need general dispatch, such as a pinned provider)
entered anywhere in the process: while it is zero, the element-wise fast paths may skip dispatch
entirely; otherwise they go through the general path, which reports to the recorders of the
current context.

A recorder whose ``symbolic`` attribute is true (the graph tracer) is also asked, by
``outputs(schema, runtime, inputs, kernel_attrs, output_metas, placement)``, for the call's
outputs instead of running a kernel: validated calls become graph nodes.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any, Iterator, Protocol, Sequence


class Recorder(Protocol):
    def record(self, schema: Any, inputs: Sequence[Any], attrs: dict, outputs: Sequence[Any]) -> None:
        """Called after each op call with its input tensors (None where absent), kernel attributes
        and output tensors."""


_RECORDERS: contextvars.ContextVar[tuple] = contextvars.ContextVar("opdispatch_recorders", default=())
ACTIVE = [0]
_LOCK = threading.Lock()


def active() -> tuple:
    """The recorders of the current context, innermost last."""
    return _RECORDERS.get()


def sees_ops() -> bool:
    """Whether an active recorder must see every op call (a gradient tape, a tracer), so a graph must be
    inlined rather than run; a recorder with ``sees_ops = False`` (the numerics check) watches graphs
    run as graphs."""
    return any(getattr(r, "sees_ops", True) for r in _RECORDERS.get())


def push(recorder: Recorder) -> contextvars.Token:
    """Make ``recorder`` see the op calls of the current context until `pop`."""
    hold_fast_paths()
    return _RECORDERS.set(_RECORDERS.get() + (recorder,))


def pop(token: contextvars.Token) -> None:
    """Undo the matching `push`."""
    _RECORDERS.reset(token)
    release_fast_paths()


def hold_fast_paths() -> None:
    """Send every op through general dispatch until the matching `release_fast_paths`."""
    with _LOCK:
        ACTIVE[0] += 1


def release_fast_paths() -> None:
    """Undo the matching `hold_fast_paths`."""
    with _LOCK:
        ACTIVE[0] -= 1


_DECOMPOSING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("opdispatch_decomposing", default=())


@contextlib.contextmanager
def decomposing(op: str) -> Iterator[None]:
    """Mark the op calls made inside as parts of ``op``'s decomposition (a tracer notes it on the nodes)."""
    token = _DECOMPOSING.set(_DECOMPOSING.get() + (op,))
    try:
        yield
    finally:
        _DECOMPOSING.reset(token)


def decomposing_ops() -> tuple[str, ...]:
    """The ops whose decompositions are running here, outermost first."""
    return _DECOMPOSING.get()


_DIFFERENTIATING: contextvars.ContextVar[Any] = contextvars.ContextVar("opdispatch_differentiating", default=None)


@contextlib.contextmanager
def differentiating(record: Any) -> Iterator[None]:
    """Mark the op calls made inside as the gradient rule of the recorded forward call ``record``."""
    token = _DIFFERENTIATING.set(record)
    try:
        yield
    finally:
        _DIFFERENTIATING.reset(token)


def differentiated() -> Any:
    """The forward call whose gradient rule is running here (a tape's record), or None."""
    return _DIFFERENTIATING.get()
