"""``opdispatch ops``: every op of the op table as a backend author needs it, generated from
`opdispatch.ops.OPS` (so it cannot drift from it): its inputs, the kernel signature, the form each
attribute arrives in at the kernel, its dtypes, whether it is differentiable, its decomposition and
the ops its gradient rule calls (the backward ops a backend may implement).

Attribute forms: each attribute's normaliser (`opdispatch.attrs`) and its op's shape inference
turn the user's forms into one canonical form (SAME padding resolved, axes a sorted tuple of
non-negative ints, ...), which is what kernels receive. `KernelForm` says that form in words and
as a check; ``tests/test_op_reference.py`` checks every form against the kernel attributes of every
conformance grid case, and that every attribute of every op has one.
"""

from __future__ import annotations

import dis
import types
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence


from . import attrs as A
from .dtypes import FLOAT_DTYPES, KERNEL_DTYPES
from .ops import OPS
from .schema import OpSchema, TensorMeta


@dataclass(frozen=True)
class KernelForm:
    """The form an attribute arrives in at a kernel: ``text`` for people, ``check(value, metas)`` for
    the test that keeps ``text`` true (``metas``: the call's input metas)."""

    text: str
    check: Callable[[Any, Sequence[Optional[TensorMeta]]], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(v: Any, n: Optional[int] = None, minimum: Optional[int] = None) -> bool:
    return (isinstance(v, tuple) and (n is None or len(v) == n) and all(_is_int(i) for i in v)
            and (minimum is None or all(i >= minimum for i in v)))


def _ndim(metas: Sequence[Optional[TensorMeta]]) -> int:
    return len(next(m for m in metas if m is not None).shape)


PAIR = KernelForm("(h, w): a tuple of two ints >= 1", lambda v, m: _ints(v, 2, 1))
PAIR0 = KernelForm("(h, w): a tuple of two ints >= 0", lambda v, m: _ints(v, 2, 0))
PADDING = KernelForm("((top, bottom), (left, right)): a tuple of two pairs of ints >= 0 (an int, a pair, "
                     "'VALID' and 'SAME' arrive resolved to this)",
                     lambda v, m: isinstance(v, tuple) and len(v) == 2 and all(_ints(p, 2, 0) for p in v))
BOOL = KernelForm("a bool", lambda v, m: isinstance(v, bool))
FLOAT = KernelForm("a float", lambda v, m: isinstance(v, float))
OPTIONAL_FLOAT = KernelForm("a float, or None (no bound)", lambda v, m: v is None or isinstance(v, float))
INT = KernelForm("an int", lambda v, m: _is_int(v))
POSITIVE_INT = KernelForm("an int >= 1", lambda v, m: _is_int(v) and v >= 1)
AXIS = KernelForm("an int in [0, ndim) (negative axes arrive resolved)",
                  lambda v, m: _is_int(v) and 0 <= v < max(_ndim(m), 1))
OPTIONAL_AXIS = KernelForm("an int in [0, ndim), or None (the flattened tensor)",
                           lambda v, m: v is None or (_is_int(v) and 0 <= v < max(_ndim(m), 1)))
AXES = KernelForm("a sorted tuple of distinct ints in [0, ndim) (None arrives as every axis, negative "
                  "axes resolved)",
                  lambda v, m: _ints(v, minimum=0) and list(v) == sorted(set(v)) and all(a < _ndim(m) for a in v))
PERMUTATION = KernelForm("a tuple, a permutation of range(ndim) (None arrives as the reversed axes)",
                         lambda v, m: _ints(v) and sorted(v) == list(range(_ndim(m))))
SHAPE = KernelForm("a tuple of ints >= 0 (a -1 arrives resolved)", lambda v, m: _ints(v, minimum=0))
SHAPE4 = KernelForm("a tuple of four ints >= 0", lambda v, m: _ints(v, 4, 0))
PADS = KernelForm("a tuple of one (before, after) pair of ints >= 0 per axis of x, leading axes included",
                  lambda v, m: isinstance(v, tuple) and len(v) == _ndim(m) and all(_ints(p, 2, 0) for p in v))
PER_AXIS = KernelForm("a tuple with one entry per axis of x (Python slice bounds: ints, an end may be None)",
                      lambda v, m: isinstance(v, tuple) and len(v) == _ndim(m)
                      and all(i is None or _is_int(i) for i in v))
SECTIONS = KernelForm("a tuple of ints >= 0, the size of each part (an int count arrives as equal sizes)",
                      lambda v, m: _ints(v, minimum=0))


def _one_of(*choices: str) -> KernelForm:
    return KernelForm(f"one of {', '.join(map(repr, choices))}", lambda v, m: v in choices)


BY_NORMALIZER: dict[Callable[..., Any], KernelForm] = {A.to_pair: PAIR, A.to_padding: PADDING, A.to_bool: BOOL,
                                                       A.to_float: FLOAT, A.to_shape: SHAPE}
"""Forms of the attributes normalised by `opdispatch.attrs`' shared normalisers."""

BY_ATTRIBUTE: dict[tuple[str, str], KernelForm] = {
    ("adaptive_avg_pool2d", "output_size"): KernelForm("(h, w): a tuple of two ints >= 1 (None arrives resolved "
                                                       "to the input's size)", lambda v, m: _ints(v, 2, 1)),
    ("argmax", "axis"): OPTIONAL_AXIS, ("argmin", "axis"): OPTIONAL_AXIS,
    ("batch_norm", "momentum"): FLOAT, ("batch_norm", "eps"): FLOAT, ("batch_norm_backward", "eps"): FLOAT,
    ("layer_norm", "eps"): FLOAT, ("layer_norm_backward", "eps"): FLOAT,
    ("broadcast_to", "shape"): SHAPE,
    ("cast", "dtype"): KernelForm("a dtype name: 'float16', 'float32', 'float64', 'int32', 'int64' or 'bool'",
                                  lambda v, m: v in ("float16", "float32", "float64", "int32", "int64", "bool")),
    ("clip", "min"): OPTIONAL_FLOAT, ("clip", "max"): OPTIONAL_FLOAT,
    ("conv2d_bias_clip", "min"): OPTIONAL_FLOAT, ("conv2d_bias_clip", "max"): OPTIONAL_FLOAT,
    ("conv_transpose2d", "padding"): PADDING, ("conv_transpose2d", "output_padding"): PAIR0,
    ("dropout", "p"): KernelForm("a float in [0, 1]", lambda v, m: isinstance(v, float) and 0 <= v <= 1),
    ("dropout", "seed"): KernelForm("an int (seed=None arrives as one drawn from od.random)",
                                    lambda v, m: _is_int(v)),
    ("gelu", "approximate"): _one_of("none", "tanh"),
    ("layer_norm", "normalized_shape"): SHAPE, ("layer_norm_backward", "normalized_shape"): SHAPE,
    ("local_response_norm", "size"): POSITIVE_INT,
    ("pad", "pads"): PADS, ("pad", "mode"): _one_of("constant", "reflect", "edge"), ("pad", "value"): FLOAT,
    ("scatter_add", "size"): KernelForm("an int >= 0: the length of the result's axis", lambda v, m: _is_int(v)),
    ("slice", "starts"): PER_AXIS, ("slice", "ends"): PER_AXIS, ("slice", "steps"): PER_AXIS,
    ("slice", "axes"): KernelForm("a sorted tuple of the axes the user sliced (starts, ends and steps already "
                                  "cover every axis)", lambda v, m: _ints(v, minimum=0) and list(v) == sorted(set(v))),
    ("split", "sections"): SECTIONS,
    ("squeeze", "axis"): AXES, ("unsqueeze", "axis"): KernelForm(
        "a sorted tuple of distinct ints in [0, ndim of the result)", lambda v, m: _ints(v, minimum=0)
        and list(v) == sorted(set(v))),
    ("transpose", "axes"): PERMUTATION,
}
"""Forms of the attributes each op normalises itself (or resolves in its shape inference)."""

BY_NAME: dict[str, KernelForm] = {"stride": KernelForm("(h, w): a tuple of two ints >= 1 (pooling's None arrives "
                                                       "as kernel_size)", lambda v, m: _ints(v, 2, 1)),
                                  "groups": POSITIVE_INT, "input_shape": SHAPE4, "weight_shape": SHAPE4,
                                  "axis": AXIS, "start_axis": AXIS}
"""Forms by attribute name, for the rest (``axis`` of the reductions: see `REDUCTION_AXES`)."""

REDUCTION_AXES = ("sum", "mean", "max", "min", "max_backward", "min_backward")
"""Ops whose ``axis`` arrives as `AXES`."""


def kernel_form(op: str, attr: str) -> Optional[KernelForm]:
    """The form attribute ``attr`` of ``op`` arrives in at a kernel, or None when none is known."""
    schema = OPS[op]
    normalizer = next(a.normalize for a in schema.attrs if a.name == attr)
    if (op, attr) in BY_ATTRIBUTE:
        return BY_ATTRIBUTE[(op, attr)]
    if attr == "axis" and op in REDUCTION_AXES:
        return AXES
    if normalizer in BY_NORMALIZER:
        return BY_NORMALIZER[normalizer]
    return BY_NAME.get(attr)


def _value_dtypes(schema: OpSchema) -> list[str]:
    """The compute dtypes of ``schema``'s calls, from its input kinds (the schema refuses some of
    these for some ops, with an error naming what it allows)."""
    kinds = {i.kind for i in schema.inputs}
    if "value" in kinds:
        return [d.name for d in KERNEL_DTYPES]
    if "float" in kinds:
        return [d.name for d in FLOAT_DTYPES]
    return []


def called_ops(fn: Optional[Callable[..., Any]]) -> list[str]:
    """The ops a gradient rule or decomposition calls through its ``F`` argument (``F.conv2d(...)``),
    following its nested functions and the functions of its own module it calls. Arithmetic
    operators on tensors (``a * b``: mul) are not counted."""
    found: set[str] = set()
    seen: set[int] = set()

    def visit(code: types.CodeType, module_globals: dict) -> None:
        if id(code) in seen:
            return
        seen.add(id(code))
        prev: Any = None
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and prev is not None and prev.argval == "F" \
                    and prev.opname in ("LOAD_FAST", "LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_CLOSURE"):
                if ins.argval in OPS:
                    found.add(ins.argval)
            if ins.opname == "LOAD_GLOBAL":
                target = module_globals.get(ins.argval)
                if isinstance(target, types.FunctionType) and target.__module__ == module_globals.get("__name__"):
                    visit(target.__code__, module_globals)
            prev = ins
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit(const, module_globals)

    if isinstance(fn, types.FunctionType):
        visit(fn.__code__, fn.__globals__)
    return sorted(found)


def _signature(schema: OpSchema) -> str:
    inputs = [("*" if i.variadic else "") + i.name + ("=None" if i.optional else "") for i in schema.inputs]
    attrs = list(schema.kernel_attr_names())
    parts = inputs + ((["*"] if not schema.variadic else []) + attrs if attrs else [])
    return f"{schema.name}({', '.join(parts)})"


def _default(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def describe(name: str) -> dict[str, Any]:
    """Everything a backend author needs of op ``name``, as plain data (JSON-ready)."""
    schema = OPS[name]
    gradient_of = sorted(op for op, s in OPS.items() if name in called_ops(s.vjp))
    return {
        "name": name, "family": schema.family, "doc": schema.doc,
        "inputs": [{"name": i.name, "kind": i.kind, "optional": i.optional, "variadic": i.variadic}
                   for i in schema.inputs],
        "kernel_signature": _signature(schema),
        "attributes": [{"name": a.name, "default": _default(a.default),
                        "kernel_form": (kernel_form(name, a.name) or KernelForm("?", lambda v, m: True)).text}
                       for a in schema.attrs],
        "dtypes": _value_dtypes(schema),
        "differentiable": schema.vjp is not None,
        "no_gradient_reason": schema.no_vjp or None,
        "gradient_calls": called_ops(schema.vjp),
        "in_the_gradient_of": gradient_of,
        "decomposition": None if schema.decomposition is None else list(schema.decomposition.uses),
    }


KIND_TEXT = {"float": "float tensor", "int": "int32/int64 tensor", "bool": "bool tensor",
             "value": "float, int or bool tensor"}


def text(entry: dict[str, Any]) -> str:
    """One op's entry, for people."""
    lines = [f"{entry['name']}  [{entry['family']}]  {entry['doc']}".rstrip(),
             f"  kernel: fn{entry['kernel_signature'][len(entry['name']):]}"]
    for i in entry["inputs"]:
        extra = ", optional (None when absent)" if i["optional"] else ""
        extra += ", variadic (that many positional arguments)" if i["variadic"] else ""
        lines.append(f"  input {i['name']}: {KIND_TEXT[i['kind']]}{extra}")
    for a in entry["attributes"]:
        lines.append(f"  attr {a['name']} (default {a['default']!r}): {a['kernel_form']}")
    lines.append(f"  dtypes (its inputs' kinds allow): {', '.join(entry['dtypes']) or '-'}")
    grad = "yes" if entry["differentiable"] else f"no ({entry['no_gradient_reason']})"
    if entry["gradient_calls"]:
        grad += f"; its gradient calls {', '.join(entry['gradient_calls'])}"
    lines.append(f"  differentiable: {grad}")
    if entry["in_the_gradient_of"]:
        lines.append(f"  called by the gradient of: {', '.join(entry['in_the_gradient_of'])}")
    decomp = entry["decomposition"]
    lines.append(f"  decomposition: {'into ' + ', '.join(decomp) if decomp else 'none: a kernel or unsupported'}")
    return "\n".join(lines)


def all_ops() -> list[dict[str, Any]]:
    """`describe` of every op, in name order."""
    return [describe(name) for name in OPS]


