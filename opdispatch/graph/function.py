"""``od.function``: trace a Python function once per input signature, then run it as a graph.

The signature of a call is the structure of its arguments, each tensor's shape, dtype and
device, the Python values of every other argument and the current ``od.device`` placement.
A new signature traces the function again (so Python control flow on Python values works);
a known one runs the cached, optimised, placed graph.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .. import recording
from ..device import current_placement
from ..errors import InvalidArgumentError, OpDispatchError
from ..tensor import Tensor, tensor
from .executor import Executable
from .ir import Graph
from .pipeline import lower, optimize, pass_options
from .source import innermost_user_source, user_traceback
from .trace import Tracer, TracedTensor


def _flatten(obj: Any, leaves: list) -> Any:
    """The structure of ``obj`` (tuples, lists, dicts) with tensors moved into ``leaves``."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T",)
    if isinstance(obj, np.ndarray):
        leaves.append(tensor(obj))
        return ("T",)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_flatten(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten(v, leaves)) for k, v in obj.items()))
    try:
        hash(obj)
    except TypeError:
        raise InvalidArgumentError(f"od.function: an argument got {type(obj).__name__}, which is neither a tensor "
                                   f"nor hashable; allowed: tensors, arrays, hashable Python values, and "
                                   f"tuples, lists and dicts of them") from None
    return ("S", obj)


def _unflatten(tree: Any, leaves: list) -> Any:
    kind = tree[0]
    if kind == "T":
        return leaves.pop(0)
    if kind == "S":
        return tree[1]
    if kind == "dict":
        return {k: _unflatten(t, leaves) for k, t in tree[1]}
    items = [_unflatten(t, leaves) for t in tree[1]]
    return tuple(items) if kind == "tuple" else items


@dataclass(frozen=True)
class _Entry:
    traced: Graph
    graph: Graph
    out_tree: Any
    executable: Executable


class Function:
    """A function traced into a graph per input signature (see `opdispatch.function`)."""

    def __init__(self, fn: Callable[..., Any], passes: Optional[Mapping[str, bool]] = None) -> None:
        self._fn = fn
        self._opts = pass_options(passes)
        self._cache: dict[Any, _Entry] = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if recording.active():  # inside a trace (inline it) or under an eager tape (which must see the ops)
            return self._fn(*args, **kwargs)
        entry, leaves = self._entry(args, kwargs)
        outs = entry.executable.run([t._data for t in leaves])
        return _unflatten(entry.out_tree, outs)

    def graph(self, *args: Any, optimized: bool = True, **kwargs: Any) -> Graph:
        """The graph this call runs (``optimized=False``: as traced, before any pass or placement)."""
        entry, _ = self._entry(args, kwargs)
        return entry.graph if optimized else entry.traced

    def _entry(self, args: tuple, kwargs: dict) -> tuple[_Entry, list]:
        leaves: list[Tensor] = []
        tree = _flatten((args, kwargs), leaves)
        placement = current_placement()
        key = (tree, tuple((t._shape, t._dtype, t._rt.device) for t in leaves), placement)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._trace(tree, leaves, placement)
        return entry, leaves

    def _trace(self, tree: Any, leaves: list, placement: Any) -> _Entry:
        traced, out_tree = _trace(self._fn, tree, leaves)
        graph = lower(optimize(traced, self._opts), [t._rt.device for t in leaves], placement, self._opts)
        return _Entry(traced, graph, out_tree, Executable(graph))


def _trace(fn: Callable[..., Any], tree: Any, leaves: list) -> tuple[Graph, Any]:
    """Run ``fn`` on traced stand-ins of ``leaves``; return its graph and the structure of its result."""
    tracer = Tracer(getattr(fn, "__name__", "function"))
    traced_args, traced_kwargs = _unflatten(tree, [tracer.input(t) for t in leaves])
    token = recording.push(tracer)
    try:
        result = fn(*traced_args, **traced_kwargs)
    except OpDispatchError as exc:
        raise _at_user_line(exc, fn) from exc.__cause__
    finally:
        recording.pop(token)
    out_leaves: list[Tensor] = []
    out_tree = _flatten_outputs(result, out_leaves)
    return tracer.graph([tracer.value_of(t) for t in out_leaves]), out_tree


def trace(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Graph:
    """The graph of ``fn`` on these arguments as traced: no pass, no placement (tests, inspection)."""
    leaves: list[Tensor] = []
    tree = _flatten((args, kwargs), leaves)
    return _trace(fn, tree, leaves)[0]


def _flatten_outputs(obj: Any, leaves: list) -> Any:
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T",)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_flatten_outputs(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten_outputs(v, leaves)) for k, v in obj.items()))
    return ("S", obj)


def _at_user_line(exc: OpDispatchError, fn: Callable[..., Any]) -> OpDispatchError:
    """``exc`` with the user's line in its message and opdispatch's frames cut from its traceback."""
    src = innermost_user_source(exc.__traceback__)
    if src is not None and exc.args and isinstance(exc.args[0], str) and str(src) not in exc.args[0]:
        name = getattr(fn, "__qualname__", "function")
        exc.args = (f"{exc.args[0]}\n  while tracing od.function {name!r}, at {src}: {src.code}",) + exc.args[1:]
    return exc.with_traceback(user_traceback(exc.__traceback__))


def function(fn: Optional[Callable[..., Any]] = None, *, passes: Optional[Mapping[str, bool]] = None) -> Any:
    """Trace ``fn`` into a graph on its first call per input signature and run the graph after.

        @od.function
        def step(x, w):
            return od.relu(od.conv2d(x, w, padding="SAME"))

    ``passes`` switches graph passes off by name, e.g. ``{"fuse": False}`` (names:
    constant_fold, cse, dce, fuse, memory). ``step.graph(*args)`` returns the `Graph` a call runs.

    Called inside another traced function, ``fn`` is inlined into that trace; called while an
    eager `GradientTape` records, it runs eagerly so the tape sees its ops. Tensor values are
    unknown while tracing: ``bool``, ``float``, ``int``, ``.numpy()`` or ``np.asarray`` on a
    traced tensor raise `GraphTraceError` at the user's line.
    """
    if fn is None:
        return lambda f: Function(f, passes)
    return Function(fn, passes)


__all__ = ["function", "Function", "TracedTensor", "trace"]
