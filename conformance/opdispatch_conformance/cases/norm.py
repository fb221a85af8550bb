"""Conformance cases of the norm family: the deterministic grid and the seeded random generators
of its ops (batch_norm, batch_norm_backward, layer_norm, layer_norm_backward, local_response_norm)."""

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


def special_layer_norm_grid() -> Iterator[Case]:
    """NaN and infinities (through their row's statistics), large values around small ones (the variance
    must not cancel), and for local_response_norm x^2 overflowing float32 (1e20) and zeros with k = 0 (0/0)."""
    for pool in (NONFINITE, (1e4, -1e4, 100.0, -100.0)):
        yield Case("layer_norm", (special(4, 3, 5, pool=pool), positive(3, 5), normal(3, 5)),
                   {"normalized_shape": (3, 5)})
        yield Case("layer_norm", (special(6, 9, pool=pool), None, None), {"normalized_shape": 9})
        yield Case("layer_norm_backward", (special(4, 3, 5, pool=pool), normal(4, 3, 5), positive(3, 5)),
                   {"normalized_shape": (3, 5)})
        yield Case("layer_norm_backward", (normal(6, 9), special(6, 9, pool=pool), None), {"normalized_shape": 9})
    for size in (2, 3, 5):
        yield Case("local_response_norm", (special(2, 6, 3, 3, pool=NONFINITE),), {"size": size})
        yield Case("local_response_norm", (special(2, 6, 3, 3, pool=(1e4, -1e4, 100.0, -100.0, 1e20, -1e20)),),
                   {"size": size, "alpha": 1.0})
    yield Case("local_response_norm", (special(1, 5, 2, 2, pool=(0.0, -0.0)),), {"size": 3, "k": 0.0, "alpha": 1.0})


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


LAYER_SHAPES = (((2, 3, 4, 5), (4, 5)), ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (3, 4, 5)), ((6, 7), (7,)),
                ((9,), (9,)), ((4, 1), (1,)), ((3, 70), (70,)), ((2, 5, 67), (5, 67)), ((17, 3, 2), (2,)),
                ((1, 257), (257,)))
"""(x shape, normalized_shape): every trailing depth, one-element rows, rows wider than a work-group."""


def layer_norm_grid() -> Iterator[Case]:
    for shape, ns in LAYER_SHAPES:
        for affine in ((None, None), (positive(*ns), normal(*ns)), (normal(*ns), None), (None, normal(*ns))):
            yield Case("layer_norm", (normal(*shape),) + affine, {"normalized_shape": ns})
    yield Case("layer_norm", (normal(3, 8), None, None), {"normalized_shape": 8, "eps": 1e-3})
    yield Case("layer_norm", (normal(2, 3, 4), positive(3, 4), normal(3, 4)), {"normalized_shape": [3, 4], "eps": 0.5})
    # values around 30 that spread by 1: a one-pass variance (E[x^2] - E[x]^2) loses 3 digits in float32
    yield Case("layer_norm", (In((4, 6), "uniform", 30.0, 31.0), None, None), {"normalized_shape": (6,)})


def grad_layer_norm_grid() -> Iterator[Case]:
    for shape, ns in LAYER_SHAPES:
        for weight in (None, positive(*ns)):
            yield Case("layer_norm_backward", (normal(*shape), normal(*shape), weight), {"normalized_shape": ns})
    yield Case("layer_norm_backward", (normal(3, 8), normal(3, 8), normal(8)), {"normalized_shape": 8, "eps": 0.5})


def local_response_norm_grid() -> Iterator[Case]:
    for shape in ((2, 5, 3, 4), (1, 3, 2, 2), (2, 7, 5), (1, 1, 3, 3), (2, 4, 2, 3, 2), (1, 70, 3)):
        for size in (1, 2, 3, 4, 5, 6, 9):
            yield Case("local_response_norm", (normal(*shape),), {"size": size})
    for attrs in ({"size": 5, "alpha": 0.5, "beta": 0.75, "k": 2.0}, {"size": 3, "alpha": 1.0, "beta": 1.5, "k": 1.0},
                  {"size": 4, "alpha": 2.0, "beta": 0.5, "k": 0.5}, {"size": 2, "alpha": 1e-3, "beta": -0.5, "k": 3.0}):
        yield Case("local_response_norm", (normal(2, 6, 3, 3),), attrs)
    yield Case("local_response_norm", (normal(0, 4, 3, 3),), {"size": 3})  # an empty batch


def empty_layer_norm_grid() -> Iterator[Case]:
    """Empty leading axes: an empty y, zero weight and bias gradients."""
    for shape, ns in (((0, 5), (5,)), ((2, 0, 3, 4), (3, 4))):
        yield Case("layer_norm", (normal(*shape), positive(*ns), normal(*ns)), {"normalized_shape": ns})
        yield Case("layer_norm_backward", (normal(*shape), normal(*shape), positive(*ns)), {"normalized_shape": ns})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (batch_norm_grid, grad_batch_norm_grid, empty_batch_norm_grid,
                                                    layer_norm_grid, grad_layer_norm_grid, local_response_norm_grid,
                                                    empty_layer_norm_grid)
"""The grid generators, each numbered from seed 0."""

def _layer_norm(r: random.Random) -> Case:
    x = tuple(r.randint(1, 5) for _ in range(r.randint(1, 4)))
    ns = x[len(x) - r.randint(1, len(x)):]
    affine = r.random() < 0.6
    return Case("layer_norm", (In(x), In(ns, "uniform", 0.1, 2.0) if affine else None,
                               In(ns) if affine and r.random() < 0.7 else None),
                {"normalized_shape": ns, "eps": r.choice([1e-5, 1e-3])})


def _layer_norm_backward(r: random.Random) -> Case:
    fwd = _layer_norm(r)
    x, weight, _ = fwd.inputs
    x = cast(In, x)
    return Case("layer_norm_backward", (x, In(x.shape), weight), dict(fwd.attrs))


def _local_response_norm(r: random.Random) -> Case:
    shape = (r.randint(1, 3), r.randint(1, 8)) + tuple(r.randint(1, 4) for _ in range(r.choice([1, 2, 3])))
    return Case("local_response_norm", (In(shape, "uniform", -3.0, 3.0),),
                {"size": r.randint(1, 7), "alpha": round(r.uniform(1e-4, 2.0), 4),
                 "beta": round(r.uniform(0.25, 1.5), 3), "k": round(r.uniform(0.5, 2.0), 3)})


SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_norm_grid, special_layer_norm_grid)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'batch_norm': _batch_norm,
    'batch_norm_backward': _batch_norm_backward,
    'layer_norm': _layer_norm,
    'layer_norm_backward': _layer_norm_backward,
    'local_response_norm': _local_response_norm,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
