"""`OpSchema`: one object per op holding everything the core knows about it.

A schema holds the op's inputs, its typed attributes (defaults and normalisers), shape and
dtype inference, the float64 reference implementation and what the conformance suite needs
(the reduction length that scales tolerances). Later transformations (autodiff, graph passes)
keep their own rule tables keyed by op name, in the style of JAX's primitives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

from .errors import InvalidArgumentError


class TensorMeta(NamedTuple):
    """What shape inference knows of a tensor: its shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class Input:
    """One tensor input of an op. ``kind`` is ``'float'`` or ``'int'`` (class labels)."""

    name: str
    optional: bool = False
    kind: str = "float"


@dataclass(frozen=True)
class Attr:
    """One attribute: its default and the normaliser ``(op, name, value) -> canonical value``."""

    name: str
    default: Any
    normalize: Callable[[str, str, Any], Any]


InferFn = Callable[[str, Sequence[Optional[TensorMeta]], dict], "tuple[list[TensorMeta], dict]"]


@dataclass(frozen=True)
class OpSchema:
    """The definition of one op.

    ``infer(op, metas, attrs)`` gets the input metas (None for an absent optional input) and the
    statically normalised attributes; it validates, and returns the output metas together with
    the attributes the kernel receives (shape-dependent forms resolved, e.g. SAME padding made
    explicit). ``reference(*arrays, **kernel_attrs)`` computes the result in float64.
    ``reduction_length(metas, kernel_attrs)`` is the number of terms summed per output element,
    from which the conformance suite derives tolerances; ``tolerance_factor`` scales them.
    ``check_values(arrays, kernel_attrs)`` validates input values (e.g. label range) before the kernel
    runs; ``arrays`` holds host copies of the integer inputs and the `TensorMeta` of the float ones.
    """

    name: str
    inputs: tuple[Input, ...]
    attrs: tuple[Attr, ...]
    infer: InferFn
    reference: Callable[..., Any]
    doc: str = ""
    reduction_length: Callable[[Sequence[Optional[TensorMeta]], dict], int] = lambda metas, attrs: 1
    tolerance_factor: float = 1.0
    check_values: Optional[Callable[[Sequence[Any], dict], None]] = None
    attr_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attr_names", tuple(a.name for a in self.attrs))

    def normalize(self, given: dict) -> dict:
        """Validate user attributes and return them in canonical form, defaults filled in."""
        out = {}
        for attr in self.attrs:
            value = given.get(attr.name, attr.default)
            out[attr.name] = attr.normalize(self.name, attr.name, value)
        if len(given) > len(out) or any(k not in out for k in given):
            unknown = sorted(k for k in given if k not in out)
            raise InvalidArgumentError(f"{self.name}: unknown attribute(s) {unknown}; allowed: {list(self.attr_names)}")
        return out

    def kernel_attr_names(self) -> tuple[str, ...]:
        """The keyword arguments every kernel of this op must accept."""
        return self.attr_names


def passthrough(op: str, arg: str, value: Any) -> Any:
    """Normaliser for attributes that shape inference validates itself (they need input ranks)."""
    return value
