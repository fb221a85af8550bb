"""The op table: every op's `OpSchema`, by name, collected from the family modules.

Each family module (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare) defines its ops'
schemas (forward, backward and fused ops together), their gradient rules and decompositions; this
module only gathers them, so adding an op means editing its family, never a list here.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import InvalidArgumentError
from ..schema import FAMILIES as FAMILY_NAMES
from ..schema import Decomposition, Input, OpSchema, TensorMeta
from . import compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

FAMILIES: tuple[ModuleType, ...] = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The family modules, in the order of `opdispatch.schema.FAMILIES`."""


def _collect() -> dict[str, OpSchema]:
    table: dict[str, OpSchema] = {}
    for module in FAMILIES:
        for schema in vars(module).values():
            if isinstance(schema, OpSchema) and schema.family == module.FAMILY:
                if schema.name in table and table[schema.name] is not schema:
                    raise RuntimeError(f"op {schema.name!r} is defined twice")
                table[schema.name] = schema
    return dict(sorted(table.items()))


OPS: dict[str, OpSchema] = _collect()
"""Every op by name (forward, backward and fused), in name order."""

if tuple(m.FAMILY for m in FAMILIES) != FAMILY_NAMES:  # pragma: no cover - a developer error
    raise RuntimeError("opdispatch.ops.FAMILIES is out of step with opdispatch.schema.FAMILIES")


def get_schema(name: str) -> OpSchema:
    """The schema of op ``name``, or `InvalidArgumentError` listing the known ops."""
    try:
        return OPS[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown op {name!r}; allowed: {sorted(OPS)}") from None


__all__ = ["OPS", "FAMILIES", "OpSchema", "Input", "TensorMeta", "Decomposition", "get_schema"]
