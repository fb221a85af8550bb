"""Conformance cases of the compare family: the comparisons and where, on float operands (in the
case's dtype) and on int32, int64 and bool ones (fixed dtypes), with broadcasting, ties (equal
operands), NaN, infinities and signed zeros. Their bool or integer outputs are compared exactly."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import Case, In, normal, rand_shape, special

OPS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
SHAPES = (((2, 3), (2, 3)), ((4, 5), (5,)), ((3, 1), (1, 4)), ((), (6,)), ((2, 3, 4), (3, 1)), ((1031,), (1031,)))


def _int(shape: tuple, dtype: str = "int32") -> In:
    return In(shape, dtype=dtype)


def _rounded(*shape: int) -> In:
    """Float values on a coarse grid (-1.5 .. 1.5 in halves): equal operands are common."""
    return In(tuple(shape), "special", low=-0.0, high=0.0, values=(-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5))


def compare_grid() -> Iterator[Case]:
    for op in OPS:
        for sa, sb in SHAPES:
            yield Case(op, (normal(*sa), normal(*sb)), {})
            yield Case(op, (_rounded(*sa), _rounded(*sb)), {})
            for dtype in ("int32", "int64"):
                yield Case(op, (_int(sa, dtype), _int(sb, dtype)), {})
        yield Case(op, (In((3, 4), dtype="bool"), In((4,), dtype="bool")), {})
        same = normal(4, 5)
        yield Case(op, (same, same), {})  # equal operands everywhere


def where_grid() -> Iterator[Case]:
    for sc, sa, sb in (((2, 3), (2, 3), (2, 3)), ((4, 5), (5,), ()), ((3, 1), (1, 4), (3, 4)), ((), (6,), (6,)),
                       ((2, 1, 4), (3, 1), (2, 3, 4)), ((1031,), (1031,), (1031,))):
        cond = In(sc, dtype="bool")
        yield Case("where", (cond, normal(*sa), normal(*sb)), {})
        for dtype in ("int32", "int64"):
            yield Case("where", (cond, _int(sa, dtype), _int(sb, dtype)), {})


def special_compare_grid() -> Iterator[Case]:
    """NaN compares unequal (not_equal true), +-inf order, -0.0 == 0.0; where passes NaN and inf through."""
    for op in OPS:
        yield Case(op, (special(7, 9), special(7, 9)), {})
        yield Case(op, (special(7, 9), special(9)), {})
        yield Case(op, (special(20, pool=(float("nan"), float("inf"), -0.0)),
                        In((20,), "array", values=(float("nan"), float("inf"), 0.0) * 6 + (1.0, -1.0))), {})
    yield Case("where", (In((7, 9), dtype="bool"), special(7, 9), special(9)), {})


def _compare(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        shape = rand_shape(r)
        other = shape[r.randint(0, len(shape)):] if shape and r.random() < 0.5 else shape
        dtype = r.choice(("", "", "int32", "int64", "bool"))
        return Case(op, (In(shape, dtype=dtype), In(tuple(other), dtype=dtype)), {})
    return make


def _where(r: random.Random) -> Case:
    shape = rand_shape(r)
    parts = [shape[r.randint(0, len(shape)):] if shape and r.random() < 0.5 else shape for _ in range(3)]
    dtype = r.choice(("", "", "int32", "int64"))
    return Case("where", (In(tuple(parts[0]), dtype="bool"), In(tuple(parts[1]), dtype=dtype),
                          In(tuple(parts[2]), dtype=dtype)), {})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (compare_grid, where_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_compare_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {op: _compare(op) for op in OPS}
RANDOM["where"] = _where
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
