"""Conformance cases of the pool family: the deterministic grid and the seeded random generators
of its ops (max_pool2d, avg_pool2d, max_pool2d_backward, avg_pool2d_backward, adaptive_avg_pool2d)."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator, cast

from .base import (NONFINITE, Case, In, forward_shape, normal, output_shape_of, rand_pair, rand_padding, special)


def pool_grid(op: str) -> Iterator[Case]:
    x = normal(2, 3, 7, 6)
    for k in (2, 3, (3, 2)):
        for stride in (None, 1, 2):
            yield Case(op, (x,), {"kernel_size": k, "stride": stride})
    for padding in (1, (1, 0), ((0, 1), (1, 0)), "VALID", "SAME"):
        yield Case(op, (x,), {"kernel_size": 3, "stride": 2, "padding": padding})
    for ceil_mode in (False, True):
        yield Case(op, (normal(1, 2, 6, 6),), {"kernel_size": 3, "stride": 2, "ceil_mode": ceil_mode})
        yield Case(op, (normal(1, 2, 7, 8),), {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": ceil_mode})
        # PyTorch's rule: a last window that would start in the trailing padding is dropped
        yield Case(op, (normal(1, 1, 5, 5),), {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": ceil_mode})
    yield Case(op, (normal(1, 1, 1, 1),), {"kernel_size": 1})
    yield Case(op, (normal(1, 1, 2, 2),), {"kernel_size": 2, "padding": "SAME"})
    yield Case(op, (normal(1, 1, 9, 9),), {"kernel_size": 3, "stride": 3, "padding": "SAME"})
    if op == "max_pool2d":
        yield Case(op, (x,), {"kernel_size": 2, "dilation": 2})
        yield Case(op, (x,), {"kernel_size": 3, "stride": 1, "dilation": (2, 1), "padding": 1})
        yield Case(op, (normal(1, 1, 8, 8),), {"kernel_size": 3, "dilation": 2, "ceil_mode": True, "stride": 2})
        yield Case(op, (In((1, 2, 4, 4), "uniform", -5.0, -1.0),), {"kernel_size": 3, "padding": 1, "stride": 1})
    else:
        for cip in (True, False):
            yield Case(op, (x,), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": cip})
            yield Case(op, (x,), {"kernel_size": 2, "padding": "SAME", "count_include_pad": cip})
            yield Case(op, (normal(1, 2, 7, 8),), {"kernel_size": 3, "stride": 2, "padding": ((1, 0), (0, 2)),
                                               "ceil_mode": True, "count_include_pad": cip})
    # batches of 5, 7 and 17 (not multiples of any chunk), rows wider than 64
    yield Case(op, (normal(5, 2, 6, 67),), {"kernel_size": 3, "stride": 2, "padding": 1})
    yield Case(op, (normal(7, 3, 5, 9),), {"kernel_size": 2})
    yield Case(op, (normal(17, 1, 4, 5),), {"kernel_size": 2, "stride": 1})


def max_pool_backward_case(x: In, attrs: dict) -> Case:
    return Case("max_pool2d_backward", (x, In(forward_shape("max_pool2d", (x.shape,), attrs))), attrs)


def avg_pool_backward_case(x: tuple, attrs: dict) -> Case:
    return Case("avg_pool2d_backward", (In(forward_shape("avg_pool2d", (x,), attrs)),), dict(attrs, input_shape=x))


def grad_pool_grid() -> Iterator[Case]:
    x = (2, 3, 7, 6)
    for k in (2, 3, (3, 2)):
        for stride in (None, 1, 2):
            attrs: dict[str, Any] = {"kernel_size": k, "stride": stride}
            yield max_pool_backward_case(In(x), attrs)
            yield avg_pool_backward_case(x, attrs)
    for padding in (1, (1, 0), ((0, 1), (1, 0)), "VALID", "SAME"):
        attrs = {"kernel_size": 3, "stride": 2, "padding": padding}
        yield max_pool_backward_case(In(x), attrs)
        yield avg_pool_backward_case(x, attrs)
    for ceil_mode in (False, True):
        for shape, attrs in (((1, 2, 6, 6), {"kernel_size": 3, "stride": 2}),
                             ((1, 2, 7, 8), {"kernel_size": 2, "stride": 2, "padding": 1}),
                             ((1, 1, 5, 5), {"kernel_size": 2, "stride": 3, "padding": 1})):
            attrs = dict(attrs, ceil_mode=ceil_mode)
            yield max_pool_backward_case(In(shape), attrs)
            yield avg_pool_backward_case(shape, attrs)
    for shape, attrs in (((1, 1, 1, 1), {"kernel_size": 1}), ((1, 1, 2, 2), {"kernel_size": 2, "padding": "SAME"}),
                         ((1, 1, 9, 9), {"kernel_size": 3, "stride": 3, "padding": "SAME"}),
                         ((1, 1, 8, 7), {"kernel_size": 2, "padding": "SAME"})):  # SAME odd total
        yield max_pool_backward_case(In(shape), attrs)
        yield avg_pool_backward_case(shape, attrs)
    # max pooling: dilation, ceil mode with dilation, all-negative input next to -inf padding
    yield max_pool_backward_case(In(x), {"kernel_size": 2, "dilation": 2})
    yield max_pool_backward_case(In(x), {"kernel_size": 3, "stride": 1, "dilation": (2, 1), "padding": 1})
    yield max_pool_backward_case(In((1, 1, 8, 8)), {"kernel_size": 3, "dilation": 2, "ceil_mode": True, "stride": 2})
    yield max_pool_backward_case(In((1, 2, 4, 4), "uniform", -5.0, -1.0), {"kernel_size": 3, "padding": 1,
                                                                             "stride": 1})
    # ties: repeated values, overlapping windows (the first maximum of each window takes its gradient)
    ties = In((1, 2, 4, 5), "array", values=tuple([1, 3, 3, 0, 3, 2, 3, 1, 3, 3, 0, 0, 0, 0, 0, 3, 3, 2, 3, 3]
                                                  + [2.0] * 20))
    for attrs in ({"kernel_size": 2, "stride": 1}, {"kernel_size": 3, "stride": 1, "padding": 1},
                  {"kernel_size": 2}, {"kernel_size": (2, 3), "stride": (1, 2), "ceil_mode": True}):
        yield max_pool_backward_case(ties, attrs)
    # avg pooling: both divisor rules with padding, SAME and ceil_mode overhang
    for cip in (True, False):
        yield avg_pool_backward_case(x, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": cip})
        yield avg_pool_backward_case(x, {"kernel_size": 2, "padding": "SAME", "count_include_pad": cip})
        yield avg_pool_backward_case((1, 2, 7, 8), {"kernel_size": 3, "stride": 2, "padding": ((1, 0), (0, 2)),
                                                    "ceil_mode": True, "count_include_pad": cip})
        yield avg_pool_backward_case((2, 2, 5, 6), {"kernel_size": (3, 2), "stride": 1, "padding": (1, 1),
                                                    "count_include_pad": cip})
    # batches of 5, 7 and 17, rows wider than 64
    for shape, attrs in (((5, 2, 6, 67), {"kernel_size": 3, "stride": 2, "padding": 1}),
                         ((7, 3, 5, 9), {"kernel_size": 2}), ((17, 1, 4, 5), {"kernel_size": 2, "stride": 1})):
        yield max_pool_backward_case(In(shape), attrs)
        yield avg_pool_backward_case(shape, attrs)


def empty_batch_pool_grid() -> Iterator[Case]:
    """An empty batch (N = 0): empty results of the right shape, with padding, ceil_mode, dilation,
    both divisor rules, and the non-overlapping windows a kernel may special-case."""
    x = (0, 3, 7, 6)
    for attrs in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2},
                  {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}):
        yield Case("max_pool2d", (In(x),), attrs)
        yield max_pool_backward_case(In(x), attrs)
        for cip in (True, False):
            yield Case("avg_pool2d", (In(x),), dict(attrs, count_include_pad=cip))
            yield avg_pool_backward_case(x, dict(attrs, count_include_pad=cip))
    yield Case("max_pool2d", (In(x),), {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": "SAME"})
    yield max_pool_backward_case(In(x), {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": "SAME"})


def special_pool_grid() -> Iterator[Case]:
    """NaN propagates through max pooling (a NaN is its window's maximum, even next to -inf
    padding) and average pooling, infinities too (inf - inf: NaN); max pooling's gradient sends a
    window's dy to its first NaN."""
    nan = (float("nan"),)
    for attrs in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2},
                  {"kernel_size": 3, "stride": 1, "dilation": 2, "ceil_mode": True}):
        yield Case("max_pool2d", (special(2, 3, 9, 10),), attrs)
    yield Case("max_pool2d", (special(1, 2, 8, 8, pool=nan),), {"kernel_size": 2})
    yield Case("max_pool2d", (special(2, 1, 7, 8, pool=(float("-inf"),)),), {"kernel_size": 3, "stride": 2,
                                                                            "padding": 1, "ceil_mode": True})
    yield Case("max_pool2d", (special(5, 2, 4, 67, pool=nan),), {"kernel_size": 3, "stride": 2})
    for cip in (True, False):
        yield Case("avg_pool2d", (special(2, 3, 9, 10),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                           "count_include_pad": cip})
    yield Case("avg_pool2d", (special(1, 2, 8, 8, pool=nan),), {"kernel_size": 2})
    for attrs in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2}):
        yield max_pool_backward_case(special(2, 3, 7, 6, pool=NONFINITE), attrs)
        yield max_pool_backward_case(special(1, 2, 8, 8, pool=nan), attrs)
    yield Case("avg_pool2d_backward", (special(2, 3, 4, 3),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                               "input_shape": (2, 3, 7, 6)})


def adaptive_pool_grid() -> Iterator[Case]:
    """adaptive_avg_pool2d: sizes that divide (avg_pool2d), overlapping windows (7 -> 3, 5 -> 3), outputs
    larger than the input (repeated elements), global (1, 1), None entries, identity, odd/empty/large batches."""
    ap = "adaptive_avg_pool2d"
    for shape, out in (((2, 3, 8, 6), (4, 3)), ((2, 3, 8, 6), 2), ((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 5), 3),
                       ((2, 3, 7, 6), (1, 1)), ((1, 2, 9, 10), 1), ((1, 2, 3, 4), (5, 7)), ((1, 1, 2, 2), 4),
                       ((1, 2, 6, 7), (None, 3)), ((1, 2, 6, 7), (4, None)), ((1, 2, 6, 7), (6, 7)),
                       ((1, 1, 1, 1), 1), ((1, 1, 1, 1), (2, 3)), ((1, 2, 10, 3), (3, 1)), ((2, 2, 13, 11), (7, 7)),
                       ((5, 2, 6, 67), (3, 5)), ((17, 1, 4, 5), (2, 3)), ((0, 3, 7, 6), (3, 2)), ((0, 3, 8, 6), 2)):
        yield Case(ap, (normal(*shape),), {"output_size": out})


def special_adaptive_pool_grid() -> Iterator[Case]:
    """NaN and infinities reach only the outputs whose windows hold them (inf - inf: NaN)."""
    for out in ((3, 2), (4, 3), (1, 1)):
        yield Case("adaptive_avg_pool2d", (special(2, 3, 8, 6),), {"output_size": out})
    yield Case("adaptive_avg_pool2d", (special(1, 2, 7, 5, pool=NONFINITE),), {"output_size": (3, 3)})


def _adaptive_avg_pool2d(r: random.Random) -> Case:
    shape = (r.randint(1, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9))
    out = tuple(r.choice([None, r.randint(1, 10), r.randint(1, 4)]) for _ in range(2))
    return Case("adaptive_avg_pool2d", (In(shape),), {"output_size": out})


def _pool(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        attrs = {"kernel_size": rand_pair(r, 1, 4), "stride": r.choice([None, rand_pair(r, 1, 3)]),
                 "padding": rand_padding(r), "ceil_mode": r.random() < 0.5}
        if op == "max_pool2d":
            attrs["dilation"] = rand_pair(r, 1, 2)
        else:
            attrs["count_include_pad"] = r.random() < 0.5
        return Case(op, (In((r.randint(1, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9))),), attrs)
    return make


def _max_pool2d_backward(r: random.Random) -> Case:
    fwd = _pool("max_pool2d")(r)
    return Case("max_pool2d_backward", (fwd.inputs[0], In(output_shape_of(fwd))), fwd.attrs)


def _avg_pool2d_backward(r: random.Random) -> Case:
    fwd = _pool("avg_pool2d")(r)
    x = cast(In, fwd.inputs[0])
    return Case("avg_pool2d_backward", (In(output_shape_of(fwd)),), dict(fwd.attrs, input_shape=x.shape))


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (lambda: pool_grid("max_pool2d"), lambda: pool_grid("avg_pool2d"),
                                                   grad_pool_grid, empty_batch_pool_grid, adaptive_pool_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_pool_grid, special_adaptive_pool_grid)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'max_pool2d': _pool("max_pool2d"),
    'avg_pool2d': _pool("avg_pool2d"),
    'max_pool2d_backward': _max_pool2d_backward,
    'avg_pool2d_backward': _avg_pool2d_backward,
    'adaptive_avg_pool2d': _adaptive_avg_pool2d,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
