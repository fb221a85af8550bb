"""Conformance cases, one module per op family (the same family names as the core and every
backend): each has ``GRIDS`` (deterministic grid generators covering every attribute dimension of
API.md) and ``RANDOM`` (per op, a seeded random case generator). The tables here are built from
the families; adding an op means adding its cases to its family module."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Callable, Iterator

from . import conv, elementwise, layout, linalg, nn, norm, pool, reduce
from .base import Case, In, case_from_json, forward_shape, is_valid

FAMILIES: tuple[ModuleType, ...] = (conv, pool, norm, nn, linalg, elementwise, reduce, layout)

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


__all__ = ["Case", "In", "FAMILIES", "GENERATORS", "grid_cases", "random_cases", "case_from_json",
           "forward_shape", "is_valid"]
