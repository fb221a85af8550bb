"""``od.random``: opdispatch's global random state.

    od.random.seed(0)      # from here on, every seed=None dropout (eager or graph) is reproducible

The state is a splitmix64 sequence: ``seed(s)`` sets it, each draw takes its next 64-bit value.
Ops that need randomness draw a *seed* from it (``od.dropout(x, seed=None)`` draws one per call)
and compute their random bits from that seed on the device with a counter-based hash, so the same
seed gives the same bits on every device. Never seeded, the state starts from OS entropy.

Under ``od.function`` a draw cannot be made while tracing (the graph runs many times): the tracer
hands out `opdispatch.ops.nn.RunSeed` markers instead, numbered in the order of the traced calls,
and each run of the graph draws that many seeds here (`run_seeds`) before it starts, so a graph
makes the same draws, in the same order, as the eager code it was traced from -- and gets a fresh
mask on every call. Saved graphs keep the markers.

This module holds only what dropout needs; `Generator`, ``normal`` and ``uniform`` are to come.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Mapping, Union

from . import recording
from .attrs import _is_int
from .errors import arg_error
from .ops.nn import RunSeed
from .reference.nn import GOLDEN, MASK64, mix64

__all__ = ["seed"]


class _State:
    """A splitmix64 sequence (thread-safe): draw n returns mix64(seed + n * GOLDEN)."""

    def __init__(self, s: int) -> None:
        self._lock = threading.Lock()
        self._seed, self._count = s, 0

    def reset(self, s: int) -> None:
        with self._lock:
            self._seed, self._count = s, 0

    def take(self, n: int) -> list[int]:
        """The next ``n`` draws, consecutive even when other threads draw too."""
        with self._lock:
            start = self._count
            self._count += n
            base = self._seed
        return [mix64((base + (start + k + 1) * GOLDEN) & MASK64) for k in range(n)]


_STATE = _State(secrets.randbits(64))


def seed(s: int) -> None:
    """Seed the global random state with an int in [0, 2**64): the seeds drawn after it (by
    ``od.dropout(..., seed=None)``, eager or in a graph) are the same in every process."""
    if not _is_int(s) or not 0 <= s <= MASK64:
        raise arg_error("od.random.seed", "s", s, "an int in [0, 2**64)")
    _STATE.reset(int(s))


def next_seed() -> Union[int, RunSeed]:
    """The seed of the next random op call (``od.dropout`` with ``seed=None``): a draw from the global
    state; while ``od.function`` traces, a `RunSeed` marker from the tracer (resolved per run)."""
    for recorder in reversed(recording.active()):
        if getattr(recorder, "symbolic", False) and hasattr(recorder, "run_seed"):
            return recorder.run_seed()
    return _STATE.take(1)[0]


def run_seeds(count: int) -> list[int]:
    """The seeds of one graph run: the next ``count`` draws (`RunSeed(k)` takes the k-th)."""
    return _STATE.take(count) if count else []


def seed_count(attrs: Mapping[str, Any]) -> int:
    """1 + the largest `RunSeed` index among ``attrs``' values (0 when none is one)."""
    return max((v.draw + 1 for v in attrs.values() if isinstance(v, RunSeed)), default=0)


def with_run_seeds(attrs: dict, seeds: list[int]) -> dict:
    """``attrs`` with every `RunSeed(k)` replaced by ``seeds[k]`` (``attrs`` itself when none is one)."""
    if not any(isinstance(v, RunSeed) for v in attrs.values()):
        return attrs
    return {k: seeds[v.draw] if isinstance(v, RunSeed) else v for k, v in attrs.items()}
