"""Errors of the graph frontend, all under `opdispatch.OpDispatchError`."""

from __future__ import annotations

from ..errors import OpDispatchError


class GraphError(OpDispatchError):
    """Root of the errors raised by the graph frontend."""


class GraphTraceError(GraphError):
    """A traced function did something tracing cannot capture, e.g. data-dependent control flow."""


class GraphFormatError(GraphError):
    """A saved graph file is malformed or was tampered with."""
