"""``od.check_numerics()``: name the first op whose output gains a NaN or an infinity.

Inside the block every op call (eager ops, the nodes of graphs run with ``od.function`` or a loaded
graph, and the ops of a backward pass) is watched: when an output holds NaN or inf and none of the
call's float inputs did, `NumericsError` names the op, the device and the user's line that made the
call, and, in a backward pass, the forward op whose gradient it was computing. Values flowing in with
NaN or inf already are not reported again (the first op is what matters). Watching reads every
float input and output back to the host, so it is a debugging tool; outside the block it costs
nothing. NumPy's own floating-point warnings from inside opdispatch never reach the user: this is
the place to learn where a NaN starts.
"""

from __future__ import annotations

import weakref
from typing import Any, Optional, Sequence

import numpy as np

from . import recording
from .errors import NumericsError
from .source import Source, user_source
from .tensor import Tensor


def _finite(array: Any) -> bool:
    a = np.asarray(array)
    return a.dtype.kind != "f" or bool(np.isfinite(a).all())


def _what(array: Any) -> str:
    a = np.asarray(array)
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return ", ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} inf" if inf else "") if p)


class check_numerics:  # noqa: N801 - a context manager used like a function: ``with od.check_numerics():``
    """Raise `NumericsError` at the first op (eager, in a graph, or in a backward pass) whose output has
    a NaN or inf its inputs did not have. Nests; per thread and asyncio task."""

    symbolic = False  # a watcher, not a tracer: kernels still run
    sees_ops = False  # graphs run as graphs under it; their nodes are watched through `check_node`

    def __init__(self) -> None:
        self._tokens: list = []
        self._made: dict[int, tuple[Any, str, Optional[Source]]] = {}  # id(tensor) -> (ref, op, user line)

    def __enter__(self) -> "check_numerics":
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
        bad = [i for i, t in enumerate(outputs) if t.dtype.kind == "f" and not _finite(t.numpy())]
        if not bad or not all(t is None or t.dtype.kind != "f" or _finite(t.numpy()) for t in inputs):
            return
        first = outputs[bad[0]]
        raise NumericsError(self._message(schema.name, first.device, src, _what(first.numpy()), bad[0],
                                          len(outputs)))

    # -- graph nodes (the executor calls this for watchers) ---------------------------------------------
    def check_node(self, node: Any, rt: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Called by the graph executor after each node with its backend arrays."""
        if node.op == "copy":
            return
        hosts = [rt.to_numpy(o, rt.device) for o in outputs]
        bad = [i for i, h in enumerate(hosts) if not _finite(h)]
        if not bad or not all(a is None or _finite(rt.to_numpy(a, rt.device)) for a in inputs):
            return
        where = node.sources[0] if node.sources else None
        raise NumericsError(self._message(node.op, node.device, where, _what(hosts[bad[0]]), bad[0], len(outputs),
                                          grad_of=node.grad_of, decomposed_from=node.decomposed_from))

    def _message(self, op: str, device: Any, src: Optional[Source], what: str, index: int, count: int,
                 grad_of: str = "", decomposed_from: str = "") -> str:
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
        return (f"{op}: {label} on {device} has {what} though its inputs are finite{context}{where}; "
                f"the first NaN or inf of this computation starts here")
