"""``od.check_numerics()``: name the first op whose output gains a NaN or an infinity.

Inside the block every op call (eager ops, the nodes of graphs run with ``od.function`` or a loaded
graph, and the ops of a backward pass) is watched: when an output holds NaN or inf and none of the
call's float inputs did, `NumericsError` names the op, the device and the user's line that made the
call, and, in a backward pass, the forward op whose gradient it was computing. What flows in is not
reported again (the first op is what matters): an output's NaN is reported when no input held a NaN
(``inf - inf`` is), its inf when no input held NaN or inf. Watching reads every
float input and output back to the host, so it is a debugging tool; outside the block it costs
nothing. NumPy's own floating-point warnings from inside opdispatch never reach the user: this is
the place to learn where a NaN starts.
"""

from __future__ import annotations

import weakref
from typing import Any, Optional, Sequence

import numpy as np

from . import recording
from .errors import InvalidArgumentError, NumericsError
from .source import Source, user_source
from .tensor import Tensor


def _flags(array: Any) -> tuple[bool, bool]:
    """Whether float array ``array`` holds a NaN, and whether it holds an inf."""
    a = np.asarray(array)
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return False, False
    return bool(np.isnan(a).any()), bool(np.isinf(a).any())


def _new_nonfinite(outputs: Sequence[Any], inputs: Sequence[Any]) -> Optional[tuple[int, str, str]]:
    """The first output (index, what it holds, what the inputs held) with a NaN no input held, or an inf
    where no input held NaN or inf; None when there is none. Host arrays, None for absent inputs."""
    out_flags = [_flags(o) for o in outputs]
    if not any(nan or inf for nan, inf in out_flags):
        return None
    in_flags = [_flags(a) for a in inputs if a is not None]
    in_nan, in_inf = any(f[0] for f in in_flags), any(f[1] for f in in_flags)
    for i, (nan, inf) in enumerate(out_flags):
        if nan and not in_nan or inf and not (in_nan or in_inf):
            a = np.asarray(outputs[i])
            n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            what = ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else "") if p)
            return i, what, "finite" if not in_inf else "free of NaN (one holds inf)"
    return None


class check_numerics:  # noqa: N801 - a context manager used like a function: ``with od.check_numerics():``
    """Raise `NumericsError` at the first op (eager, in a graph, or in a backward pass) whose output has
    a NaN or inf its inputs did not have. Nests; per thread and asyncio task."""

    symbolic = False  # a watcher, not a tracer: kernels still run
    sees_ops = False  # graphs run as graphs under it; their nodes are watched through `check_node`

    def __init__(self) -> None:
        self._tokens: list = []
        self._made: dict[int, tuple[Any, str, Optional[Source]]] = {}  # id(tensor) -> (ref, op, user line)

    def __enter__(self) -> "check_numerics":
        if any(getattr(r, "symbolic", False) for r in recording.active()):
            raise InvalidArgumentError("od.check_numerics: entered inside od.function; allowed: around the call of "
                                       "the compiled function (with od.check_numerics(): step(x, y)), which watches "
                                       "every node of its graph, because a traced function runs only once, "
                                       "without values")
        self._tokens.append(recording.push(self))
        return self

    def __exit__(self, *exc: object) -> None:
        recording.pop(self._tokens.pop())
        self._made.clear()

    # -- eager calls (recorder protocol) --------------------------------------------------------------
    def record(self, schema: Any, inputs: Sequence[Any], attrs: dict, outputs: Sequence[Any]) -> None:
        """Called by eager dispatch after each op call."""
        if any(type(t) is not Tensor for t in outputs):  # traced (symbolic) tensors: nothing to read yet
            return
        src = user_source(3)
        for out in outputs:
            self._made[id(out)] = (weakref.ref(out), schema.name, src)
        if not any(t.dtype.kind == "f" for t in outputs):
            return
        found = _new_nonfinite([t.numpy() for t in outputs],
                               [t.numpy() if t is not None and t.dtype.kind == "f" else None for t in inputs])
        if found is not None:
            raise NumericsError(self._message(schema.name, outputs[found[0]].device, src, found, len(outputs)))

    # -- graph nodes (the executor calls this for watchers) ---------------------------------------------
    def check_node(self, node: Any, rt: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Called by the graph executor after each node with its backend arrays."""
        if node.op == "copy":
            return
        found = _new_nonfinite([rt.to_numpy(o, rt.device) for o in outputs],
                               [None if a is None else rt.to_numpy(a, rt.device) for a in inputs])
        if found is not None:
            where = node.sources[0] if node.sources else None
            raise NumericsError(self._message(node.op, node.device, where, found, len(outputs),
                                              grad_of=node.grad_of, decomposed_from=node.decomposed_from))

    def _message(self, op: str, device: Any, src: Optional[Source], found: tuple[int, str, str], count: int,
                 grad_of: str = "", decomposed_from: str = "") -> str:
        index, what, inputs = found
        label = f"output {index}" if count > 1 else "its output"
        where = f" at {src} ({src.code})" if src is not None and src.code else (f" at {src}" if src else "")
        if not grad_of:
            forward = recording.differentiated()
            if forward is not None:
                made = self._made.get(id(forward.outputs[0])) if forward.outputs else None
                line = made[2] if made is not None and made[0]() is forward.outputs[0] else None
                grad_of = forward.schema.name + (f" (created at {line})" if line is not None else "")
        if not decomposed_from:
            within = recording.decomposing_ops()
            decomposed_from = within[0] if within else ""
        context = f", in the gradient of {grad_of}" if grad_of else ""
        context += f", in the decomposition of {decomposed_from}" if decomposed_from else ""
        return (f"{op}: {label} on {device} has {what} though its inputs are {inputs}{context}{where}; "
                f"the first NaN or inf of this computation starts here")
