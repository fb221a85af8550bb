"""Conformance cases of the nn family: the deterministic grid and the seeded random generators
of its ops (softmax, log_softmax, softmax_cross_entropy, softmax_cross_entropy_backward, dropout)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import (EDGES, NONFINITE, Case, In, normal, rand_shape, special)


def nn_grid() -> Iterator[Case]:
    for op in ("softmax", "log_softmax"):
        for shape, axis in (((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1), ((6,), 0), ((3, 1), 1)):
            yield Case(op, (normal(*shape),), {"axis": axis})
        yield Case(op, (In((2, 6), "uniform", -120.0, 120.0),), {})  # large logits: exp overflows unless max-shifted
    for n, c in ((4, 5), (1, 1), (16, 10), (3, 2)):
        yield Case("softmax_cross_entropy", (normal(n, c), In((n,), "labels", high=c)), {})
    yield Case("softmax_cross_entropy", (In((4, 3), "uniform", -60.0, 60.0), In((4,), "labels", high=3)), {})
    for op in ("softmax", "log_softmax"):  # rows longer than a work-group's share, odd sizes
        yield Case(op, (normal(5, 130),), {"axis": -1})
        yield Case(op, (normal(131, 3),), {"axis": 0})
    yield Case("softmax_cross_entropy", (normal(17, 67), In((17,), "labels", high=67)), {})


def xent_backward_grid() -> Iterator[Case]:
    for n, c in ((4, 5), (1, 1), (16, 10), (3, 2)):
        yield Case("softmax_cross_entropy_backward", (normal(n, c), In((n,), "labels", high=c), normal()), {})
    yield Case("softmax_cross_entropy_backward", (In((4, 3), "uniform", -60.0, 60.0), In((4,), "labels", high=3),
                                                  normal()), {})
    yield Case("softmax_cross_entropy_backward", (normal(17, 67), In((17,), "labels", high=67), normal()), {})


def empty_batch_nn_grid() -> Iterator[Case]:
    """An empty batch (N = 0): the mean loss of no terms is NaN (as PyTorch's reduction='mean'), its
    gradient an empty (0, C) array."""
    for c in (1, 5):
        yield Case("softmax_cross_entropy", (normal(0, c), In((0,), "labels", high=c)), {})
        yield Case("softmax_cross_entropy_backward", (normal(0, c), In((0,), "labels", high=c), normal()), {})


MASKED = (float("-inf"),)
"""Masked logits: -inf where a position must get no probability."""


def special_nn_grid() -> Iterator[Case]:
    """Logits at exp's overflow edges (+-100, +-1e4, +-88.7: stable only when max-shifted), masked with
    -inf, and NaN/inf rows (NaN through the whole row), over rows longer than 64."""
    for op in ("softmax", "log_softmax"):
        yield Case(op, (special(6, 70, pool=EDGES),), {"axis": -1})
        yield Case(op, (In((4, 67), "uniform", -1e4, 1e4),), {"axis": -1})
        yield Case(op, (special(70, 4, pool=MASKED),), {"axis": 0})
        yield Case(op, (special(9, 5, pool=NONFINITE),), {"axis": -1})
    for op, tail in (("softmax_cross_entropy", ()), ("softmax_cross_entropy_backward", (normal(),))):
        yield Case(op, (special(8, 70, pool=EDGES), In((8,), "labels", high=70)) + tail, {})
        yield Case(op, (In((5, 9), "uniform", -1e4, 1e4), In((5,), "labels", high=9)) + tail, {})
        yield Case(op, (special(12, 9, pool=MASKED), In((12,), "labels", high=9)) + tail, {})
        yield Case(op, (special(6, 5, pool=NONFINITE), In((6,), "labels", high=5)) + tail, {})


def _softmax(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        shape = rand_shape(r) or (4,)
        return Case(op, (In(shape, "uniform", -10.0, 10.0),), {"axis": r.randint(-len(shape), len(shape) - 1)})
    return make


def _xent(r: random.Random) -> Case:
    n, c = r.randint(1, 8), r.randint(1, 6)
    return Case("softmax_cross_entropy", (In((n, c), "uniform", -5.0, 5.0), In((n,), "labels", high=c)), {})


def _xent_backward(r: random.Random) -> Case:
    fwd = _xent(r)
    return Case("softmax_cross_entropy_backward", fwd.inputs + (In(()),), {})


def dropout_grid() -> Iterator[Case]:
    """dropout: the mask is a hash of (seed, element index), so a device whose mask differs from the
    reference's in one element fails by a factor of 1 / (1 - p) there."""
    for p in (0.5, 0.1, 0.9, 0.0, 1.0, 1e-9, 0.999):
        yield Case("dropout", (normal(4, 5),), {"p": p, "seed": 7})
    for seed in (0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1):
        yield Case("dropout", (normal(3, 7),), {"p": 0.3, "seed": seed})
    yield Case("dropout", (normal(),), {"p": 0.5, "seed": 3})
    yield Case("dropout", (normal(0, 4),), {"p": 0.5, "seed": 3})
    yield Case("dropout", (normal(2, 3, 4, 5),), {"seed": 5})  # p's default
    # odd sizes larger than a work-group, and many elements (the index enters the hash)
    yield Case("dropout", (normal(5, 67),), {"p": 0.25, "seed": 12345})
    yield Case("dropout", (normal(3, 129, 65),), {"p": 0.6, "seed": 99})


def special_dropout_grid() -> Iterator[Case]:
    """A dropped NaN or inf stays NaN (x * 0, as PyTorch and ONNX); a kept one stays; -0.0 keeps its sign."""
    for p in (0.5, 1.0, 0.0):
        yield Case("dropout", (special(4, 6),), {"p": p, "seed": 11})


def _dropout(r: random.Random) -> Case:
    return Case("dropout", (In(rand_shape(r)),), {"p": r.choice([0.0, 0.1, 0.5, 0.8, round(r.random(), 3)]),
                                                  "seed": r.randrange(2**64)})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (nn_grid, xent_backward_grid, empty_batch_nn_grid, dropout_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_nn_grid, special_dropout_grid)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'softmax': _softmax("softmax"),
    'log_softmax': _softmax("log_softmax"),
    'softmax_cross_entropy': _xent,
    'softmax_cross_entropy_backward': _xent_backward,
    'dropout': _dropout,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
