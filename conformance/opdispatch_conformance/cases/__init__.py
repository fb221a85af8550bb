"""Conformance cases, one module per op family (the same family names as the core and every
backend): each has ``GRIDS`` (deterministic grid generators covering every attribute dimension of
API.md, and odd sizes past any chunk or tile: batches of 5, 7, 17, rows wider than 64, 1000+
elements), ``SPECIAL`` (special-value cases: NaN, infinities, signed zeros, exp's overflow
edges, wide uniform ranges) and ``RANDOM`` (per op, a seeded random case generator). The tables
here are built from the families; adding an op means adding its cases to its family module.
`layout_cases` derives, for every op, grid cases whose inputs are passed as NumPy views."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Callable, Iterator

from . import compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce
from .base import LAYOUTS, NON_FLOAT_DTYPES, Case, In, applies, case_from_json, forward_shape, is_valid

FAMILIES: tuple[ModuleType, ...] = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)

GENERATORS: dict[str, Callable[[random.Random], Case]] = {op: gen for fam in FAMILIES for op, gen in fam.RANDOM.items()}
"""Every op's random case generator."""


def grid_cases() -> list[Case]:
    """The deterministic grid over every op, each case numbered by its own seed (per generator)."""
    cases = []
    for fam in FAMILIES:
        for grid in fam.GRIDS:
            for i, case in enumerate(grid()):
                cases.append(Case(case.op, case.inputs, case.attrs, seed=i, source="grid"))
    return cases


def special_cases() -> list[Case]:
    """The special-value cases of every op (source "special"), numbered by their own seed per generator.
    They are not in `grid_cases`: finite differences and gradients through NaN and inf say nothing."""
    cases = []
    for fam in FAMILIES:
        for grid in getattr(fam, "SPECIAL", ()):
            for i, case in enumerate(grid()):
                cases.append(Case(case.op, case.inputs, case.attrs, seed=i, source="special"))
    return cases


def layout_cases(per_op: int = 3) -> list[Case]:
    """For every op, ``per_op`` of its grid cases (spread over its grid) with the inputs passed as NumPy
    views instead of contiguous arrays, one layout after the other (strided, reversed, transposed);
    "transposed" goes to a case with an input of rank 2 or more where the op has one (the other layouts
    leave such a case to it: the transpose of a 1-d array is the array itself)."""
    views = [layout for layout in LAYOUTS if layout != "contiguous"]
    by_op: dict[str, list[Case]] = {}
    for case in grid_cases():
        if any(i is not None and len(i.shape) >= 1 and i.kind != "array" for i in case.inputs):
            by_op.setdefault(case.op, []).append(case)

    def has_matrix(case: Case) -> bool:
        return any(i is not None and len(i.shape) >= 2 for i in case.inputs)

    out = []
    for _op, cases in by_op.items():
        chosen: set[str] = set()
        for k in range(per_op):
            layout = views[k % len(views)]
            pool = [c for c in cases if c.name not in chosen]
            if layout == "transposed":
                pool = [c for c in pool if has_matrix(c)] or pool
            if not pool:
                break
            case = pool[(k * len(pool)) // per_op]
            transposed_later = sum(views[j % len(views)] == "transposed" for j in range(k + 1, per_op))
            if layout != "transposed" and has_matrix(case) and sum(map(has_matrix, pool)) <= transposed_later:
                others = [c for c in pool if not has_matrix(c)]  # keep the op's few matrix cases for later
                case = others[(k * len(others)) // per_op] if others else case
            chosen.add(case.name)
            out.append(case.with_layout(layout))
    return out


def random_cases(op: str, count: int, seed: int = 0) -> Iterator[Case]:
    """``count`` valid random cases of ``op``; the same (op, count, seed) always gives the same cases."""
    r = random.Random(f"{op}:{seed}")
    made = 0
    for _ in range(count * 200):
        case = GENERATORS[op](r)
        if is_valid(case):
            yield Case(case.op, case.inputs, case.attrs, seed=seed * 100_000 + made, source="random")
            made += 1
            if made == count:
                return


__all__ = ["Case", "In", "FAMILIES", "GENERATORS", "LAYOUTS", "grid_cases", "special_cases", "layout_cases",
           "random_cases", "case_from_json", "forward_shape", "is_valid", "applies", "NON_FLOAT_DTYPES"]
