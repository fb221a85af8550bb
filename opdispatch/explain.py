"""``od.explain``: how a call would run on a device, without running it.

The answer names the kernel dispatch would pick (and its provider), what every other candidate
kernel said, or, when the device has no kernel, the op's decomposition as the ops it would run
(each with its own kernel), or why the call cannot run there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from .device import Device
from .dispatch import Choice, choose, current_pin, decomposable, verdict
from .errors import DTypeError, InvalidArgumentError, KernelError
from .graph.passes.decompose import decomposition_parts
from .ops import get_schema
from .placement import current_placement
from .registry import registry
from .runtime import KernelEntry
from .schema import TensorMeta
from .tensor import Tensor


@dataclass(frozen=True)
class Plan:
    """How one call runs on one device.

    ``how`` is ``"kernel"`` (``provider``'s kernel), ``"decomposition"`` (the ops in ``parts``) or
    ``"unsupported"`` (``reason`` says why). ``candidates`` lists every kernel the device has for
    the op, in dispatch order, as ``(provider, verdict)``; ``layouts`` the result layouts the chosen
    kernel can write when a graph asks (`opdispatch.backend.Kernel.layouts`).
    """

    op: str
    device: Device
    how: str
    provider: str = ""
    reason: str = ""
    candidates: tuple[tuple[str, str], ...] = ()
    parts: tuple["Plan", ...] = field(default=())
    layouts: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        """Whether the call can run on the device (a kernel, or a decomposition whose every call has one)."""
        return self.how != "unsupported" and all(p.supported for p in self.parts)

    def lines(self, indent: int = 0) -> list[str]:
        """The plan as indented text lines (a decomposition's identical parts counted once)."""
        pad = "  " * indent
        if self.how == "kernel":
            head = f"{pad}{self.op} on {self.device}: kernel of {self.provider!r}"
        elif self.how == "decomposition":
            head = f"{pad}{self.op} on {self.device}: decomposed into {len(self.parts)} op call(s)"
        else:
            head = f"{pad}{self.op} on {self.device}: unsupported ({self.reason})"
        out = [head]
        out += [f"{pad}  candidate {p!r}: {v}" for p, v in self.candidates if indent == 0]
        counts: dict[tuple, int] = {}
        for part in self.parts:
            key = (part.op, part.how, part.provider, part.reason)
            counts[key] = counts.get(key, 0) + 1
        for (op, how, provider, reason), n in counts.items():
            what = f"kernel of {provider!r}" if how == "kernel" else f"unsupported ({reason})"
            out.append(f"{pad}  {op} x{n}: {what}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _meta(value: Any, op: str, name: str) -> Optional[TensorMeta]:
    if value is None:
        return None
    if isinstance(value, Tensor):
        return TensorMeta(value.shape, value.dtype)
    if isinstance(value, TensorMeta):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple):
        try:
            return TensorMeta(tuple(value[0]), np.dtype(value[1]))
        except TypeError:
            raise DTypeError(f"explain: argument {name!r} of {op} got dtype {value[1]!r}; allowed: a NumPy dtype or "
                             f"its name") from None
    if isinstance(value, np.ndarray):
        return TensorMeta(value.shape, value.dtype)
    raise InvalidArgumentError(f"explain: argument {name!r} of {op} got {type(value).__name__}; allowed: a tensor, "
                               f"a NumPy array, a TensorMeta or a (shape, dtype) pair")


def explain(op: str, *inputs: Any, device: Union[str, Device, None] = None, **attrs: Any) -> Plan:
    """How ``op(*inputs, **attrs)`` would run on ``device`` (default: the device of the first tensor
    input, else the current one). Inputs may be tensors, NumPy arrays, `TensorMeta` or (shape, dtype)
    pairs: only their shapes and dtypes matter. A call the op's schema rejects raises its usual error.
    """
    schema = get_schema(op)
    args = schema.flatten_args(inputs)
    if device is None:
        device = next((a.device for a in args if isinstance(a, Tensor)), current_placement().device)
    rt = registry().runtime(Device(device))
    metas = [_meta(a, op, spec.name) for a, spec in zip(args, schema.input_specs(len(args)))]
    outs, kattrs = schema.infer(op, metas, schema.normalize(attrs) if schema.attrs else attrs)
    dtype = outs[0].dtype
    choice = choose(rt, schema, metas, kattrs, dtype)
    pin = current_pin()
    candidates = tuple((e.provider, _verdict(e, choice, pin, op, metas, kattrs, dtype))
                       for e in rt.candidates.get(op, ()))
    if choice.fn is not None:
        return Plan(op, rt.device, "kernel", provider=choice.provider, candidates=candidates,
                    layouts=tuple(sorted(choice.layouts)))
    if choice.decompose:
        parts = tuple(Plan(part, rt.device, "kernel" if c.fn is not None else "unsupported", provider=c.provider,
                           reason=c.reason or "") for part, c in decomposition_parts(op, rt, metas, kattrs))
        broken = next((p for p in parts if p.how == "unsupported"), None)
        reason = "" if broken is None else \
            f"its decomposition calls {broken.op}, which cannot run there: {broken.reason}"
        return Plan(op, rt.device, "decomposition", reason=reason, candidates=candidates, parts=parts)
    reason = choice.reason or "no kernel"
    if schema.decomposition is not None and "decomposition" not in reason:
        missing = decomposable(rt, op, dtype)
        if missing:
            reason += f"; {missing}"
        elif pin:  # a pinned provider runs its kernels or nothing
            reason += f"; its decomposition is not tried while od.use_provider({pin!r}) is in force"
    return Plan(op, rt.device, "unsupported", reason=reason, candidates=candidates)


def _verdict(entry: KernelEntry, choice: Choice, pin: Optional[str], op: str, metas: list, kattrs: dict,
             dtype: np.dtype) -> str:
    if choice.fn is entry.kernel.fn and choice.provider == entry.provider:
        return "chosen"
    if pin is not None and entry.provider != pin:
        return f"not used: {pin!r} is pinned"
    try:
        declined = verdict(entry, op, metas, kattrs, dtype)
    except KernelError as exc:
        return str(exc)
    if declined:
        return f"declines: {declined}"
    return "not reached (a higher-priority kernel is chosen)"


__all__ = ["Plan", "explain"]
