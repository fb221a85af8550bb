"""Conformance cases of the norm family: the deterministic grid and the seeded random generators
of its ops (batch_norm, batch_norm_backward)."""

from __future__ import annotations

import random
from typing import Callable, Iterator, cast

from .base import (NONFINITE, Case, In, normal, positive,
                   special)


def batch_norm_grid() -> Iterator[Case]:
    for shape in ((2, 3, 4, 5), (8, 4), (1, 2, 3, 3), (4, 1, 1, 1)):
        c = shape[1]
        stats = (normal(c), positive(c))
        for affine in (False, True):
            wb = (positive(c), normal(c)) if affine else (None, None)
            yield Case("batch_norm", (normal(*shape),) + stats + wb, {})
            yield Case("batch_norm", (normal(*shape),) + stats + wb, {"training": True, "momentum": 0.3})
    yield Case("batch_norm", (normal(2, 3, 2, 2), normal(3), positive(3), positive(3), None), {"eps": 1e-3})
    yield Case("batch_norm", (normal(2, 3, 2, 2), normal(3), positive(3), None, normal(3)),
               {"training": True, "momentum": 0.0})
    yield Case("batch_norm", (normal(2, 3, 2, 2), normal(3), positive(3), None, None),
               {"training": True, "momentum": 1.0})
    # batches of 5 and 17, rows wider than 64
    for training in (False, True):
        yield Case("batch_norm", (normal(5, 3, 4, 67), normal(3), positive(3), positive(3), normal(3)),
                   {"training": training, "momentum": 0.2})
        yield Case("batch_norm", (normal(17, 70), normal(70), positive(70), None, None), {"training": training})


def grad_batch_norm_grid() -> Iterator[Case]:
    for shape in ((2, 3, 4, 5), (8, 4), (1, 2, 3, 3), (4, 1, 1, 1), (3, 2, 5)):
        c = shape[1]
        for training in (False, True):
            for weight in (None, positive(c)):
                yield Case("batch_norm_backward", (normal(*shape), normal(*shape), normal(c), positive(c), weight),
                           {"training": training})
    yield Case("batch_norm_backward", (normal(2, 3, 2, 2), normal(2, 3, 2, 2), normal(3), positive(3), normal(3)),
               {"eps": 1e-3})
    yield Case("batch_norm_backward", (normal(2, 3, 2, 2), normal(2, 3, 2, 2), normal(3), positive(3), normal(3)),
               {"training": True, "eps": 0.5})
    yield Case("batch_norm_backward", (normal(16, 8, 6, 6), normal(16, 8, 6, 6), normal(8), positive(8), positive(8)),
               {"training": True})
    for training in (False, True):
        yield Case("batch_norm_backward",
                   (normal(5, 3, 4, 67), normal(5, 3, 4, 67), normal(3), positive(3), positive(3)),
                   {"training": training})
        yield Case("batch_norm_backward", (normal(17, 70), normal(17, 70), normal(70), positive(70), None),
                   {"training": training})


def empty_batch_norm_grid() -> Iterator[Case]:
    """An empty batch (N = 0) in inference: an empty y, zero weight and bias gradients (training
    needs 2 values per channel: an empty batch is a ShapeError there)."""
    for shape in ((0, 3, 4, 5), (0, 4)):
        c = shape[1]
        for affine in (False, True):
            wb = (positive(c), normal(c)) if affine else (None, None)
            yield Case("batch_norm", (normal(*shape), normal(c), positive(c)) + wb, {})
            yield Case("batch_norm_backward", (normal(*shape), normal(*shape), normal(c), positive(c), wb[0]), {})


def special_norm_grid() -> Iterator[Case]:
    """NaN and infinities in x: per element in inference, through the channel's statistics in
    training; large values (+-1e4, +-100) around small ones: the variance must not cancel."""
    for training in (False, True):
        yield Case("batch_norm", (special(4, 3, 5, 5, pool=NONFINITE), normal(3), positive(3), positive(3), normal(3)),
                   {"training": training})
        yield Case("batch_norm", (special(6, 4, 3, 3, pool=(1e4, -1e4, 100.0, -100.0)), normal(4), positive(4),
                                  None, None), {"training": training})
        yield Case("batch_norm_backward", (special(4, 3, 5, 5, pool=NONFINITE), normal(4, 3, 5, 5), normal(3),
                                           positive(3), positive(3)), {"training": training})
        yield Case("batch_norm_backward", (special(6, 4, 3, 3, pool=(1e4, -1e4, 100.0, -100.0)), normal(6, 4, 3, 3),
                                           normal(4), positive(4), None), {"training": training})


def _batch_norm(r: random.Random) -> Case:
    c = r.randint(1, 4)
    shape = (r.randint(1, 4), c) + tuple(r.randint(1, 4) for _ in range(r.choice([0, 1, 2])))
    stat_var = In((c,), "uniform", 0.1, 2.0)
    affine = r.random() < 0.5
    return Case("batch_norm", (In(shape), In((c,)), stat_var, In((c,), "uniform", 0.1, 2.0) if affine else None,
                               In((c,)) if affine else None),
                {"training": r.random() < 0.5, "momentum": round(r.uniform(0, 1), 3),
                 "eps": r.choice([1e-5, 1e-3])})


def _batch_norm_backward(r: random.Random) -> Case:
    fwd = _batch_norm(r)
    x, rm, rv, weight, _ = fwd.inputs
    x = cast(In, x)
    return Case("batch_norm_backward", (x, In(x.shape), rm, rv, weight),
                {"training": fwd.attrs["training"], "eps": fwd.attrs["eps"]})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (batch_norm_grid, grad_batch_norm_grid, empty_batch_norm_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_norm_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'batch_norm': _batch_norm,
    'batch_norm_backward': _batch_norm_backward,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
