"""``opdispatch ops``: every op of the op table as a backend author needs it, generated from
`opdispatch.ops.OPS` (so it cannot drift from it): its inputs, the kernel signature, the form each
attribute arrives in at the kernel, its dtypes, whether it is differentiable, its decomposition and
the ops its gradient rule calls (the backward ops a backend may implement).

Attribute forms: each attribute's normaliser (`opdispatch.attrs`) and its op's shape inference
turn the user's forms into one canonical form (SAME padding resolved, axes a sorted tuple of
non-negative ints, ...), which is what kernels receive. A `KernelForm` says that form in words and
as a check; each attribute carries its own (``Attr(..., form=...)`` in its op's family module, or
the form of the shared normaliser it uses: `opdispatch.attrs.NORMALIZER_FORMS`), so a new op brings
its forms with it. ``tests/test_op_reference.py`` checks every form against the kernel attributes of
every conformance grid case, and that every attribute of every op has one.
"""

from __future__ import annotations

import dis
import types
from typing import Any, Callable, Optional

from .attrs import KernelForm
from .dtypes import FLOAT_DTYPES, KERNEL_DTYPES
from .ops import OPS
from .schema import OpSchema


def kernel_form(op: str, attr: str) -> Optional[KernelForm]:
    """The form attribute ``attr`` of ``op`` arrives in at a kernel (`opdispatch.schema.Attr.kernel_form`:
    declared beside the attribute in its op's family module, or its shared normaliser's), or None when
    none is known."""
    return next(a.kernel_form for a in OPS[op].attrs if a.name == attr)


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


