"""``od.function``: trace a Python function once per input signature, then run it as a graph.

The signature of a call is the structure of its arguments, each tensor's shape, dtype and
device, the Python values of every other argument and the current ``od.device`` placement.
A new signature traces the function again (so Python control flow on Python values works);
a known one runs the cached, optimised, placed graph.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from .. import recording
from ..dispatch import current_pin
from ..placement import Placement, current_placement
from ..registry import registry
from ..attrs import to_int
from ..errors import InvalidArgumentError, OpDispatchError
from ..tensor import Tensor, tensor
from .executor import Executable
from .graph import Graph
from .pipeline import lower, optimize, pass_options
from ..source import innermost_user_source, user_traceback
from .trace import Tracer, TracedTensor


def _flatten(obj: Any, leaves: list, seen: Optional[dict] = None) -> Any:
    """The structure of ``obj`` (tuples, lists, namedtuples, dicts) with tensors and arrays moved
    into ``leaves``. A tensor passed twice is one leaf (its index appears twice), so the graph sees
    one input, as eager code sees one object. Python values keep their type in the structure:
    ``1``, ``1.0`` and ``True`` are different signatures."""
    seen = {} if seen is None else seen
    if isinstance(obj, (Tensor, np.ndarray)):
        index = seen.get(id(obj))
        if index is None:
            index = seen[id(obj)] = len(leaves)
            leaves.append(obj)
        return ("T", index)
    if isinstance(obj, (tuple, list)):
        return ("seq", type(obj), tuple(_flatten(o, leaves, seen) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten(v, leaves, seen)) for k, v in obj.items()))
    try:
        hash(obj)
    except TypeError:
        raise InvalidArgumentError(f"od.function: an argument got {type(obj).__name__}, which is neither a tensor "
                                   f"nor hashable; allowed: tensors, arrays, hashable Python values, and "
                                   f"tuples, lists and dicts of them") from None
    return ("S", type(obj), obj)


def _rebuild(kind: type, items: list) -> Any:
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    if hasattr(kind, "_fields"):  # a namedtuple
        return kind(*items)
    return kind(items)


def _unflatten(tree: Any, leaves: list) -> Any:
    kind = tree[0]
    if kind == "T":
        return leaves[tree[1]]
    if kind == "S":
        return tree[2]
    if kind == "dict":
        return {k: _unflatten(t, leaves) for k, t in tree[1]}
    return _rebuild(tree[1], [_unflatten(t, leaves) for t in tree[2]])


def _as_tensors(leaves: list) -> list[Tensor]:
    """Array arguments become tensors on the device of the first tensor argument (where eager ops
    would bring them), or on the current device when there is none."""
    home = next((t._rt.device for t in leaves if isinstance(t, Tensor)), None)
    return [t if isinstance(t, Tensor) else tensor(t, device=home) for t in leaves]


RETRACE_WARNING = 8  # traces of one function after which a warning says why it keeps tracing
MAX_SIGNATURES = 64
"""Traced signatures an `od.function` keeps by default; past them the least recently used is dropped
(and traced again if it comes back)."""


class GraphRetraceWarning(UserWarning):
    """An `od.function` keeps tracing new signatures (usually a Python value that changes per call)."""


@dataclass(frozen=True)
class _Entry:
    """One traced signature, and its lowerings, one per state of the kernel tables (providers enabled or
    disabled, registered, pinned): each picked its kernels when it was compiled."""

    traced: Graph
    optimized: Graph
    out_tree: Any
    placement: Placement
    devices: tuple
    lowered: dict = field(default_factory=dict)

    def compiled(self, opts: Mapping[str, Union[bool, str]]) -> tuple[Graph, Executable]:
        """The placed graph and its executable for the kernels in force now."""
        generation = registry().generation
        key = (generation, current_pin())
        hit = self.lowered.get(key)
        if hit is None:
            graph = Graph.of(lower(self.optimized, list(self.devices), self.placement, opts))
            for old in [k for k in self.lowered if k[0] != generation]:  # kernels no longer in force
                del self.lowered[old]
            hit = self.lowered[key] = (graph, Executable(graph))
        return hit


class Function:
    """A function traced into a graph per input signature (see `opdispatch.function`)."""

    def __init__(self, fn: Callable[..., Any], passes: Optional[Mapping[str, Union[bool, str]]] = None,
                 max_signatures: int = MAX_SIGNATURES) -> None:
        max_signatures = to_int("od.function", "max_signatures", max_signatures, minimum=1)
        # An object with __od_function__ (an imported ONNX model) gives (pure function, state getter):
        # the state it returns (its parameters) is read at each call and passed as the first argument,
        # so the graph takes it as inputs and follows its updates.
        bind = getattr(type(fn), "__od_function__", None)
        self._state: Optional[Callable[[], Any]] = None
        if bind is not None:
            fn, self._state = bind(fn)
        self._fn = fn
        self._opts = pass_options(passes)
        self._cache: OrderedDict[Any, _Entry] = OrderedDict()  # least recently used first
        self._max_signatures = max_signatures
        self._traces = 0
        self._lock = threading.Lock()  # the cache's order; tracing itself runs outside it
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._state is not None:
            args = (self._state(),) + args
        if recording.sees_ops():  # inside a trace (inline it) or under an eager tape (which must see the ops)
            return self._fn(*args, **kwargs)
        entry, leaves = self._entry(args, kwargs)
        outs = entry.compiled(self._opts)[1].run([t._data for t in leaves])
        return _unflatten(entry.out_tree, outs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """As a method: the function with ``obj`` bound as its first argument (its attributes are
        read when a signature is traced, like any captured value)."""
        return self if obj is None else BoundFunction(self, obj)

    def graph(self, *args: Any, optimized: bool = True, **kwargs: Any) -> Graph:
        """The graph this call runs (``optimized=False``: as traced, before any pass or placement)."""
        if self._state is not None:
            args = (self._state(),) + args
        entry, _ = self._entry(args, kwargs)
        return entry.compiled(self._opts)[0] if optimized else entry.traced

    def _entry(self, args: tuple, kwargs: dict) -> tuple[_Entry, list]:
        leaves: list[Tensor] = []
        tree = _flatten((args, kwargs), leaves)
        leaves = _as_tensors(leaves)
        placement = current_placement()
        key = (tree, tuple((t._shape, t._dtype, t._rt.device) for t in leaves), placement)
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
        if entry is None:
            entry = self._trace(tree, leaves, placement)
            with self._lock:
                self._cache[key] = entry
                while len(self._cache) > self._max_signatures:
                    self._cache.popitem(last=False)  # the least recently used signature
                self._traces += 1
                traces = self._traces
            if traces == RETRACE_WARNING:
                name = getattr(self._fn, "__qualname__", "function")
                warnings.warn(f"od.function {name!r} has been traced {RETRACE_WARNING} times: every new shape, "
                              f"dtype, device or Python argument value traces again (a learning rate passed as "
                              f"a float retraces on each change); pass values that vary as tensors",
                              GraphRetraceWarning, stacklevel=3)
        return entry, leaves

    def _trace(self, tree: Any, leaves: list, placement: Placement) -> _Entry:
        traced, out_tree = _trace(self._fn, tree, leaves)
        entry = _Entry(traced, Graph.of(optimize(traced, self._opts)), out_tree, placement,
                       tuple(t._rt.device for t in leaves))
        entry.compiled(self._opts)  # place and compile now: errors surface at the first call
        return entry


class BoundFunction:
    """An `od.function` method bound to its instance."""

    def __init__(self, function: Function, obj: Any) -> None:
        self._function, self._obj = function, obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(self._obj, *args, **kwargs)

    def graph(self, *args: Any, optimized: bool = True, **kwargs: Any) -> Graph:
        """The graph this call runs (see `Function.graph`)."""
        return self._function.graph(self._obj, *args, optimized=optimized, **kwargs)


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
    return Graph.of(tracer.graph([tracer.value_of(t) for t in out_leaves])), out_tree


def trace(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Graph:
    """The graph of ``fn`` on these arguments as traced: no pass, no placement (tests, inspection)."""
    leaves: list[Tensor] = []
    tree = _flatten((args, kwargs), leaves)
    return _trace(fn, tree, _as_tensors(leaves))[0]


def _flatten_outputs(obj: Any, leaves: list) -> Any:
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T", len(leaves) - 1)
    if isinstance(obj, (tuple, list)):
        return ("seq", type(obj), tuple(_flatten_outputs(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten_outputs(v, leaves)) for k, v in obj.items()))
    return ("S", type(obj), obj)


def _at_user_line(exc: OpDispatchError, fn: Callable[..., Any]) -> OpDispatchError:
    """``exc`` with the user's line in its message and opdispatch's frames cut from its traceback."""
    src = innermost_user_source(exc.__traceback__)
    if src is not None and exc.args and isinstance(exc.args[0], str) and str(src) not in exc.args[0]:
        name = getattr(fn, "__qualname__", "function")
        exc.args = (f"{exc.args[0]}\n  while tracing od.function {name!r}, at {src}: {src.code}",) + exc.args[1:]
    return exc.with_traceback(user_traceback(exc.__traceback__))


def function(fn: Optional[Callable[..., Any]] = None, *, passes: Optional[Mapping[str, Union[bool, str]]] = None,
             max_signatures: int = MAX_SIGNATURES) -> Any:
    """Trace ``fn`` into a graph on its first call per input signature and run the graph after.

        @od.function
        def step(x, w):
            return od.relu(od.conv2d(x, w, padding="SAME"))

    ``passes`` switches graph passes off by name, e.g. ``{"fuse": False}`` (names:
    constant_fold, cse, dce, fuse, layout, memory; ``{"layout": "all"}`` asks every kernel that can
    write a channels-last result to, for checking kernels). ``step.graph(*args)`` returns the `Graph`
    a call runs.

    The traced graphs are kept per signature, at most ``max_signatures`` of them (default
    `MAX_SIGNATURES`, 64): past that the least recently used signature is dropped, and traced
    again if it comes back. After `RETRACE_WARNING` (8) traces a `GraphRetraceWarning` says why
    the function keeps tracing.

    Called inside another traced function, ``fn`` is inlined into that trace; called while an
    eager `GradientTape` records, it runs eagerly so the tape sees its ops. Tensor values are
    unknown while tracing: ``bool``, ``float``, ``int``, ``.numpy()`` or ``np.asarray`` on a
    traced tensor raise `GraphTraceError` at the user's line.
    """
    if fn is None:
        return lambda f: Function(f, passes, max_signatures)
    return Function(fn, passes, max_signatures)


__all__ = ["function", "Function", "TracedTensor", "trace"]
