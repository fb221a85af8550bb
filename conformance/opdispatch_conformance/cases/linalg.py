"""Conformance cases of the linalg family: the deterministic grid and the seeded random generators
of its ops (matmul)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import (NONFINITE, Case, In, normal, special)


def matmul_grid() -> Iterator[Case]:
    for a, b in [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5)), ((1, 1), (1, 1)), ((5,), (2, 5, 3)),
                 ((16, 64), (64, 8)),
                 # odd sizes past every tile and vector width
                 ((65, 129), (129, 67)), ((5, 3, 70), (70, 66)), ((129,), (129, 65)), ((17, 67), (67,))]:
        yield Case("matmul", (normal(*a), normal(*b)), {})


def special_matmul_grid() -> Iterator[Case]:
    """NaN and infinities propagate through the dot products (inf - inf: NaN), large values do not overflow."""
    yield Case("matmul", (special(5, 9), normal(9, 4)), {})
    yield Case("matmul", (normal(6, 70), special(70, 67, pool=NONFINITE)), {})
    yield Case("matmul", (special(2, 3, 9, pool=(float("inf"), float("-inf"), float("nan"))), normal(9)), {})
    yield Case("matmul", (special(17, 8, pool=(1e4, -1e4, 100.0)), special(8, 5, pool=(1e4, -1e4))), {})


def _matmul(r: random.Random) -> Case:
    m, k, n = r.randint(1, 6), r.randint(1, 8), r.randint(1, 6)
    batch = tuple(r.randint(1, 3) for _ in range(r.randint(0, 2)))
    a = r.choice([(k,), batch + (m, k)])
    b = r.choice([(k,), tuple(1 if r.random() < 0.3 else d for d in batch) + (k, n)])
    return Case("matmul", (In(a), In(b)), {})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (matmul_grid,)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_matmul_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'matmul': _matmul,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
