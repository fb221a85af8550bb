"""The devices and frontends the NumPy-surface tests run on: numpy:0 and opencl:0 (skipped with the
reason where opencl:0 is absent: no OpenCL platform, e.g. no PoCL), eagerly and under od.function."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import opdispatch as od

_AVAILABLE = {str(d) for d in od.devices()}

DEVICES = [pytest.param(d, id=d, marks=pytest.mark.skipif(d not in _AVAILABLE, reason=f"{d} is not available here "
                                                                                     f"(see `opdispatch devices`)"))
           for d in ("numpy:0", "opencl:0")]
"""numpy:0 and opencl:0, as pytest parameters."""

MODES = ("eager", "graph")


def in_mode(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``fn`` itself (eager) or ``od.function(fn)`` (graph)."""
    return od.function(fn) if mode == "graph" else fn
