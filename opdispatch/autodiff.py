"""Reverse-mode autodiff: `GradientTape` records op calls and replays their VJP rules backwards.

The tape records (schema, input tensors, kernel attributes, output tensors) for every op whose
inputs depend on a watched tensor. ``gradient`` walks the records in reverse and calls each op's
gradient rule (``schema.vjp``, defined beside the op in its family module); rules are written
with ops (``F``), so gradients run on the device of the forward pass and an outer tape records
them (higher-order gradients). An op a device ran as its decomposition is recorded as the ops of
the decomposition, so its gradient flows through them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import recording
from .errors import GradientError
from .schema import OpSchema
from .tensor import F, Tensor, tensor


class Record(NamedTuple):
    """One recorded op call."""

    schema: OpSchema
    inputs: tuple
    attrs: dict
    outputs: tuple
    needs: Optional[tuple] = None  # per input: whether its gradient is wanted (None: all); set for VJP rules

    def wants(self, i: int) -> bool:
        """Whether the gradient of input ``i`` is needed (rules may skip the others)."""
        return self.needs is None or bool(self.needs[i])


class GradientTape:
    """Records differentiable computation on watched tensors.

        with od.GradientTape() as tape:
            tape.watch(x)
            loss = od.sum(od.relu(od.conv2d(x, w)))
        gx = tape.gradient(loss, x)

    A non-persistent tape can compute one gradient; ``persistent=True`` allows several. Tapes
    nest: an outer tape records the gradient computation of an inner one.
    """

    def __init__(self, persistent: bool = False) -> None:
        self.persistent = persistent
        self._records: list[Record] = []
        self._tracked: dict[int, Tensor] = {}  # id -> tensor: watched, or computed from a watched one
        self._watched: dict[int, Tensor] = {}
        self._tokens: list = []
        self._used = False

    def __enter__(self) -> "GradientTape":
        self._tokens.append(recording.push(self))
        return self

    def __exit__(self, *exc: object) -> None:
        recording.pop(self._tokens.pop())

    def watch(self, tensors: Union[Tensor, Sequence[Tensor]]) -> None:
        """Differentiate with respect to ``tensors`` (a tensor or a sequence of them)."""
        for t in [tensors] if isinstance(tensors, Tensor) else list(tensors):
            if not isinstance(t, Tensor):
                raise GradientError(f"GradientTape.watch: argument 'tensors' got {type(t).__name__}; allowed: "
                                    f"od.Tensor objects (create them with od.tensor)")
            if t.dtype.kind != "f":
                raise GradientError(f"GradientTape.watch: argument 'tensors' got a {t.dtype.name} tensor; "
                                    f"allowed: float tensors")
            self._watched[id(t)] = t
            self._tracked[id(t)] = t

    def watched(self) -> list[Tensor]:
        """The tensors watched so far."""
        return list(self._watched.values())

    def record(self, schema: OpSchema, inputs: Sequence[Any], attrs: dict, outputs: Sequence[Tensor]) -> None:
        """Called by dispatch after each op call (see `opdispatch.recording`)."""
        if any(t is not None and id(t) in self._tracked for t in inputs):
            self._records.append(Record(schema, tuple(inputs), attrs, tuple(outputs)))
            for out in outputs:
                if out.dtype.kind == "f":
                    self._tracked[id(out)] = out

    def gradient(self, target: Tensor, sources: Union[Tensor, Sequence[Tensor]],
                 output_gradients: Optional[Any] = None) -> Any:
        """d target / d sources: a tensor for one source, a list for a list.

        ``output_gradients`` (default: ones) is the gradient flowing into ``target``, of its shape.
        Raises `GradientError` naming the source when it was never watched (nor computed on this
        tape) or when ``target`` does not depend on it.
        """
        if self._used and not self.persistent:
            raise GradientError("GradientTape.gradient: this tape was already used; allowed: one gradient call "
                                "per non-persistent tape (use GradientTape(persistent=True) for more)")
        single = isinstance(sources, Tensor)
        srcs: list[Tensor] = [sources] if isinstance(sources, Tensor) else list(sources)
        if not isinstance(target, Tensor) or target.dtype.kind != "f":
            raise GradientError(f"GradientTape.gradient: argument 'target' got {target!r}; allowed: a float tensor")
        for i, src in enumerate(srcs):
            if not isinstance(src, Tensor) or id(src) not in self._tracked:
                what = f"shape {src.shape}" if isinstance(src, Tensor) else type(src).__name__
                raise GradientError(f"GradientTape.gradient: source {i} ({what}) was never watched by this tape; "
                                    f"allowed: tensors passed to tape.watch() or computed from them inside the tape")
        seed = _seed(target, output_gradients)
        self._used = True
        grads: dict[int, Tensor] = {id(target): seed}
        needed = self._needed(srcs)
        for rec in reversed(self._records):
            gouts = [grads.get(id(o)) for o in rec.outputs]
            if all(g is None for g in gouts) or not any(t is not None and id(t) in needed for t in rec.inputs):
                continue
            rule = rec.schema.vjp
            if rule is None:
                raise GradientError(f"{rec.schema.name}: no gradient rule: {rec.schema.no_vjp}")
            needs = tuple(t is not None and id(t) in needed for t in rec.inputs)
            with recording.differentiating(rec):
                in_grads = rule(F, rec._replace(needs=needs), gouts)
            for inp, g in zip(rec.inputs, in_grads):
                if inp is None or g is None or id(inp) not in needed:
                    continue
                key = id(inp)
                grads[key] = g if key not in grads else grads[key] + g
        out = []
        for i, src in enumerate(srcs):
            g = grads.get(id(src))
            if g is None:
                raise GradientError(f"GradientTape.gradient: the target does not depend on source {i} "
                                    f"(shape {src.shape}); allowed: sources the target was computed from")
            out.append(g)
        if not self.persistent:
            self._records, self._tracked = [], {}
        return out[0] if single else out

    def _needed(self, srcs: list[Tensor]) -> set[int]:
        """Ids of the tensors on a path from a source (gradients elsewhere need not be computed)."""
        needed = {id(s) for s in srcs}
        for rec in self._records:
            if any(t is not None and id(t) in needed for t in rec.inputs):
                needed.update(id(o) for o in rec.outputs)
        return needed


def _seed(target: Tensor, output_gradients: Optional[Any]) -> Tensor:
    if output_gradients is None:
        return tensor(np.ones(target.shape, dtype=target.dtype), device=target.device)
    g = output_gradients if isinstance(output_gradients, Tensor) else \
        tensor(np.asarray(output_gradients, dtype=target.dtype), device=target.device)
    if g.shape != target.shape or g.dtype != target.dtype:
        raise GradientError(f"GradientTape.gradient: argument 'output_gradients' got shape {g.shape} dtype "
                            f"{g.dtype.name}; allowed: the target's shape {target.shape} and dtype {target.dtype.name}")
    return g
