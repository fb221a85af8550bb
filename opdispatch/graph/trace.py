"""The tracer: a recorder that turns op calls into graph nodes while a traced function runs.

Inside ``od.function`` the function's tensor arguments are `TracedTensor`s: symbolic tensors with
a shape, dtype and device but no data. Dispatch validates each call with the op's schema as in
eager mode, then (seeing a symbolic recorder) asks the tracer for symbolic outputs instead of
running a kernel. Tensors that are not traced (created inside the function, or captured from
outside) become constants of the graph.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import recording
from ..device import Device
from ..ops.nn import RunSeed
from ..registry import registry
from ..schema import OpSchema, TensorMeta
from ..tensor import Tensor
from .errors import GraphTraceError
from .ir import GraphIR, Node, ValueInfo, make_node, readonly
from ..source import Source, user_source


class TracedTensor(Tensor):
    """A symbolic tensor inside a traced function: shape, dtype and device, but no value yet."""

    __slots__ = ("_vid", "_tracer", "_source")

    _vid: int
    _tracer: Tracer
    _source: Optional[Source]

    def _leak(self, what: str) -> GraphTraceError:
        src = user_source(3)
        where = f" at {src} ({src.code})" if src is not None else ""
        made = f", made at {self._source}" if self._source is not None else ""
        return GraphTraceError(
            f"od.function: {what} needs the value of traced tensor %{self._vid} (shape {self._shape}, "
            f"{self._dtype.name}{made}){where}, but tensor values are unknown while tracing: data-dependent "
            f"control flow is not allowed in od.function; allowed: Python control flow on Python values and "
            f"shapes (each new value retraces), or compute with ops (e.g. od.max, od.relu) instead")

    def numpy(self) -> np.ndarray:
        raise self._leak("numpy()")

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        raise self._leak("np.asarray()")

    def __bool__(self) -> bool:
        raise self._leak("bool() (an `if` or `while` on a tensor)")

    def __float__(self) -> float:
        raise self._leak("float()")

    def __int__(self) -> int:
        raise self._leak("int()")

    def __index__(self) -> int:
        raise self._leak("using a tensor as an index")

    @property
    def data(self) -> Any:
        raise self._leak(".data")

    def to(self, device: Union[str, Device]) -> "Tensor":
        """A traced copy of this tensor onto ``device`` (an explicit copy node)."""
        return self._tracer.copy(self, Device(device))

    def __repr__(self) -> str:
        return f"<traced tensor %{self._vid} {self._dtype.name}{list(self._shape)} @{self._rt.device}>"

    __str__ = __repr__


class Tracer:
    """Builds a `GraphIR` from the op calls dispatched while it is pushed (see `opdispatch.recording`)."""

    symbolic = True  # dispatch asks `outputs` for symbolic results instead of running kernels

    def __init__(self, name: str) -> None:
        self.name = name
        self._ids = itertools.count()
        self._nodes: list[Node] = []
        self._values: dict[int, ValueInfo] = {}
        self._inputs: list[int] = []
        self._constants: dict[int, np.ndarray] = {}
        self._captured: dict[int, tuple[int, Tensor]] = {}  # id(tensor) -> (value, tensor kept alive)
        self._run_seeds = 0

    def input(self, t: Tensor) -> TracedTensor:
        """A new graph input shaped like ``t``."""
        return self.symbolic_input(t._shape, t._dtype, t._rt)

    def symbolic_input(self, shape: tuple, dtype: np.dtype, rt: Any) -> TracedTensor:
        """A new graph input of ``shape`` and ``dtype`` on the device of runtime ``rt``."""
        vid = self._new_value(shape, dtype, rt.device)
        self._inputs.append(vid)
        return self._traced(vid, shape, dtype, rt, None)

    def run_seed(self) -> RunSeed:
        """The seed of a random op called with none (``od.dropout(x, seed=None)``): a marker the
        executor replaces by a fresh draw from ``od.random`` on every run (see `opdispatch.random`)."""
        marker = RunSeed(self._run_seeds)
        self._run_seeds += 1
        return marker

    def value_of(self, t: Tensor) -> int:
        """The graph value of ``t``: its own for a traced tensor, else a constant holding its data."""
        if isinstance(t, TracedTensor):
            if t._tracer is not self:
                raise GraphTraceError(f"od.function: traced tensor %{t._vid} (made at {t._source}) belongs to "
                                      f"another trace (it escaped a traced function); allowed: tensors of this call")
            return t._vid
        hit = self._captured.get(id(t))
        if hit is not None:
            return hit[0]
        vid = self._new_value(t._shape, t._dtype, t._rt.device)  # a constant remembers where it was made
        self._constants[vid] = readonly(t.numpy())
        self._captured[id(t)] = (vid, t)
        return vid

    def outputs(self, schema: OpSchema, rt: Any, inputs: Sequence[Optional[Tensor]], kattrs: dict,
                outs: Sequence[TensorMeta], placement: Any) -> tuple[Tensor, ...]:
        """Record the call as a node and return its symbolic outputs (called by `dispatch.run`)."""
        src = user_source(2)
        in_ids = [None if t is None else self.value_of(t) for t in inputs]
        out_ids = [self._new_value(m.shape, m.dtype, rt.device) for m in outs]
        within = recording.decomposing_ops()
        forward = recording.differentiated()
        grad_of = ""
        if forward is not None:
            made = next((getattr(o, "_source", None) for o in forward.outputs), None)
            grad_of = forward.schema.name + (f" (created at {made})" if made is not None else "")
        self._nodes.append(make_node(schema.name, in_ids, out_ids, kattrs, rt.device, [src] if src else [],
                                     decomposed_from=within[0] if within else "", grad_of=grad_of))
        return tuple(self._traced(v, m.shape, m.dtype, rt, src) for v, m in zip(out_ids, outs))

    def record(self, schema: OpSchema, inputs: Sequence[Any], attrs: dict, outputs: Sequence[Any]) -> None:
        """Nothing to do: `outputs` already recorded the node."""

    def copy(self, t: TracedTensor, device: Device) -> Tensor:
        """Record an explicit copy of ``t`` onto ``device``."""
        rt = registry().runtime(device)
        if rt is t._rt:
            return t
        src = user_source(3)
        vid = self._new_value(t._shape, t._dtype, device)
        self._nodes.append(make_node("copy", [t._vid], [vid], {"device": str(device)}, device, [src] if src else []))
        return self._traced(vid, t._shape, t._dtype, rt, src)

    def graph(self, outputs: Sequence[int]) -> GraphIR:
        """The graph traced so far, with these output values."""
        return GraphIR(name=self.name, inputs=tuple(self._inputs), outputs=tuple(outputs), nodes=tuple(self._nodes),
                     values=self._values, constants=self._constants).replace()

    def _new_value(self, shape: tuple, dtype: np.dtype, device: Optional[Device]) -> int:
        vid = next(self._ids)
        self._values[vid] = ValueInfo(tuple(shape), np.dtype(dtype), device)
        return vid

    def _traced(self, vid: int, shape: tuple, dtype: np.dtype, rt: Any, src: Optional[Source]) -> TracedTensor:
        t = object.__new__(TracedTensor)
        t._data = None
        t._shape = tuple(shape)
        t._dtype = np.dtype(dtype)
        t._rt = rt
        t._vid = vid
        t._tracer = self
        t._source = src
        return t
