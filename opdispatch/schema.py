"""`OpSchema`: one object per op holding everything the core knows about it.

A schema holds the op's family, inputs, typed attributes (defaults and normalisers), shape and
dtype inference, the float64 reference implementation, its gradient rule, an optional
decomposition into other ops, and what the conformance suite needs (the reduction length that
scales tolerances). Schemas live in the family modules of `opdispatch.ops`; every table of ops
(the op table, the reference, gradient and decomposition tables) is derived from them.

Gradient rules and decompositions are written with ops: they receive ``F``, a namespace holding
the function of every op (``F.conv2d``, ``F.conv2d_backward_input``, ...; `opdispatch.tensor.F`),
so an op's whole definition sits in its family module without that module importing the eager
frontend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

from .attrs import NORMALIZER_FORMS, KernelForm
from .errors import InvalidArgumentError

FAMILIES = ("conv", "pool", "norm", "nn", "linalg", "elementwise", "reduce", "layout", "compare")
"""The op families, in the order tables list them; every layer (ops, reference, conformance cases,
backends) uses these names for its modules."""


class TensorMeta(NamedTuple):
    """What shape inference knows of a tensor: its shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class Input:
    """One tensor input of an op. ``kind`` is ``'float'``, ``'int'`` (class labels, copied to the host
    for ``check_values``), ``'bool'`` (a mask, e.g. where's ``cond``) or ``'value'`` (float, int or
    bool values, e.g. the operands of a comparison). The first present ``'float'`` or ``'value'``
    input gives the call's compute dtype, the dtype dispatch chooses a kernel for (see
    `OpSchema.compute_dtype`); a Python number passed for it takes that input's dtype. A
    ``variadic`` input (only the last one may be) takes a sequence of tensors: kernels receive
    them as that many positional arguments."""

    name: str
    optional: bool = False
    kind: str = "float"
    variadic: bool = False


INPUT_KINDS = frozenset({"float", "int", "bool", "value"})
"""The kinds an `Input` may have."""
VALUE_KINDS = frozenset({"float", "value"})
"""The input kinds whose dtype is the call's compute dtype (the first present one)."""


@dataclass(frozen=True)
class Attr:
    """One attribute: its default, the normaliser ``(op, name, value) -> canonical value`` and the
    ``form`` that value has at the kernel (`opdispatch.attrs.KernelForm`, shown by ``opdispatch ops``);
    ``form`` may be left out for the shared normalisers of `opdispatch.attrs`, which have one."""

    name: str
    default: Any
    normalize: Callable[[str, str, Any], Any]
    form: Optional[KernelForm] = None

    @property
    def kernel_form(self) -> Optional[KernelForm]:
        """``form``, else the shared normaliser's (`opdispatch.attrs.NORMALIZER_FORMS`), else None."""
        return self.form if self.form is not None else NORMALIZER_FORMS.get(self.normalize)


InferFn = Callable[[str, Sequence[Optional[TensorMeta]], dict], "tuple[list[TensorMeta], dict]"]
VjpRule = Callable[[Any, Any, Sequence[Any]], Sequence[Any]]
"""``rule(F, record, output_grads) -> input grads``: ``record`` has ``inputs``, ``outputs``,
``attrs`` (kernel attributes) and ``wants(i)`` (whether input ``i`` needs its gradient); one
gradient per input, None where none flows."""


@dataclass(frozen=True)
class Decomposition:
    """An op defined by other ops: ``fn(F, *inputs, **kernel_attrs)`` returns the op's output(s),
    computed with the functions of ``F``. ``uses`` names every op it calls (a test checks this), so
    dispatch can tell without running it whether a device can run the decomposition."""

    fn: Callable[..., Any]
    uses: tuple[str, ...]


@dataclass(frozen=True)
class OpSchema:
    """The definition of one op.

    ``infer(op, metas, attrs)`` gets the input metas (None for an absent optional input) and the
    statically normalised attributes; it validates, and returns the output metas together with
    the attributes the kernel receives (shape-dependent forms resolved, e.g. SAME padding made
    explicit). Canonical attributes are themselves valid user attributes: normalising and inferring
    them again gives them back (saved graphs and gradient rules rely on it).
    ``reference(*arrays, **kernel_attrs)`` computes the result in float64.
    ``reduction_length(metas, kernel_attrs)`` is the number of terms summed per output element,
    from which the conformance suite derives tolerances; ``tolerance_factor`` scales them.
    ``check_values(arrays, kernel_attrs)`` validates input values (e.g. label range) before the kernel
    runs; ``arrays`` holds host copies of the integer inputs and the `TensorMeta` of the float ones.
    ``takes_values`` is set when some input has kind ``'value'``.
    ``vjp`` is the gradient rule (`VjpRule`); an op without one says why in ``no_vjp``.
    ``decomposition`` defines the op by other ops, for devices without a kernel for it.
    """

    name: str
    family: str
    inputs: tuple[Input, ...]
    attrs: tuple[Attr, ...]
    infer: InferFn
    reference: Callable[..., Any]
    doc: str = ""
    reduction_length: Callable[[Sequence[Optional[TensorMeta]], dict], int] = lambda metas, attrs: 1
    tolerance_factor: float = 1.0
    check_values: Optional[Callable[[Sequence[Any], dict], None]] = None
    vjp: Optional[VjpRule] = None
    no_vjp: str = ""
    decomposition: Optional[Decomposition] = None
    attr_names: tuple[str, ...] = field(init=False)
    variadic: bool = field(init=False)
    takes_values: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"op {self.name!r}: family {self.family!r} is not one of {FAMILIES}")
        if self.vjp is None and not self.no_vjp:
            raise ValueError(f"op {self.name!r}: give a gradient rule (vjp=) or say why it has none (no_vjp=)")
        if any(i.variadic for i in self.inputs[:-1]):
            raise ValueError(f"op {self.name!r}: only the last input may be variadic")
        object.__setattr__(self, "attr_names", tuple(a.name for a in self.attrs))
        object.__setattr__(self, "variadic", bool(self.inputs) and self.inputs[-1].variadic)
        object.__setattr__(self, "takes_values", any(i.kind == "value" for i in self.inputs))
        bad = [i.name for i in self.inputs if i.kind not in INPUT_KINDS]
        if bad:
            raise ValueError(f"op {self.name!r}: input(s) {bad} have a kind not in {sorted(INPUT_KINDS)}")

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

    def compute_dtype(self, metas: Sequence[Optional[TensorMeta]], fallback: np.dtype) -> np.dtype:
        """The dtype a kernel is chosen for: that of the first present ``'float'`` or ``'value'``
        input, else ``fallback`` (the first output's). Every op whose outputs take its float inputs'
        dtype gets its output dtype; a comparison gets its operands' dtype, not bool."""
        for spec, meta in zip(self.input_specs(len(metas)), metas):
            if meta is not None and spec.kind in VALUE_KINDS:
                return meta.dtype
        return fallback

    def kernel_attr_names(self) -> tuple[str, ...]:
        """The keyword arguments every kernel of this op must accept."""
        return self.attr_names

    def input_specs(self, count: int) -> tuple[Input, ...]:
        """The `Input` of each of ``count`` flat arguments (a variadic input repeated)."""
        if not self.variadic:
            return self.inputs
        return self.inputs[:-1] + (self.inputs[-1],) * max(count - len(self.inputs) + 1, 0)

    def flatten_args(self, args: Sequence[Any]) -> tuple[Any, ...]:
        """The op function's arguments as flat kernel inputs: a variadic input's sequence spread out,
        absent trailing optional inputs as None. Raises `InvalidArgumentError` for a wrong count."""
        fixed = len(self.inputs) - self.variadic
        if self.variadic:
            if len(args) != len(self.inputs):
                raise InvalidArgumentError(f"{self.name}: got {len(args)} positional argument(s); allowed: "
                                           f"{', '.join(i.name for i in self.inputs)}")
            seq = args[-1]
            if not isinstance(seq, (list, tuple)) or not seq:
                raise InvalidArgumentError(f"{self.name}: argument {self.inputs[-1].name!r} got "
                                           f"{type(seq).__name__}; allowed: a non-empty list or tuple of tensors")
            return tuple(args[:-1]) + tuple(seq)
        if len(args) > fixed:
            raise InvalidArgumentError(f"{self.name}: got {len(args)} positional argument(s); allowed: at most "
                                       f"{fixed} ({', '.join(i.name for i in self.inputs)})")
        missing = self.inputs[len(args):]
        required = [i.name for i in missing if not i.optional]
        if required:
            raise InvalidArgumentError(f"{self.name}: missing input(s) {required}; allowed: "
                                       f"{', '.join(i.name for i in self.inputs)}")
        return tuple(args) + (None,) * len(missing)


def passthrough(op: str, arg: str, value: Any) -> Any:
    """Normaliser for attributes that shape inference validates itself (they need input ranks)."""
    return value
