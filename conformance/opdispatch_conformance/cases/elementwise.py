"""Conformance cases of the elementwise family: the deterministic grid and the seeded random generators
of its ops (relu, leaky_relu, sigmoid, silu, tanh, exp, log, sqrt, neg, add, sub, mul, div, relu_backward)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import (EDGES, NONFINITE, Case, In, normal, positive,
                   rand_shape, special)


def elementwise_grid() -> Iterator[Case]:
    for op in ("relu", "sigmoid", "tanh", "exp", "neg"):
        for shape in ((), (7,), (2, 3, 4)):
            yield Case(op, (normal(*shape),), {})
    yield Case("sigmoid", (In((50,), "uniform", -60.0, 60.0),), {})
    for op in ("log", "sqrt"):
        for shape in ((), (7,), (2, 3, 4)):
            yield Case(op, (positive(*shape),), {})
    for op in ("add", "sub", "mul", "div"):
        second = positive if op == "div" else normal
        for a, b in [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((3, 1), (1, 4))]:
            yield Case(op, (normal(*a), second(*b)), {})
    yield from large_elementwise_grid()


def large_elementwise_grid() -> Iterator[Case]:
    """Odd sizes past any work-group, vector width or chunk: 1031 elements, 17x67 broadcasts."""
    for op in ("relu", "sigmoid", "silu", "tanh", "exp", "neg"):
        yield Case(op, (normal(1031),), {})
    yield Case("leaky_relu", (normal(17, 67),), {"negative_slope": 0.3})
    for op in ("log", "sqrt"):
        yield Case(op, (positive(7, 149),), {})
    for op in ("add", "sub", "mul", "div"):
        second = positive if op == "div" else normal
        yield Case(op, (normal(1031), second(1031)), {})
        yield Case(op, (normal(17, 67), second(67)), {})
        yield Case(op, (normal(5, 1, 67), second(7, 1)), {})


def relu_backward_grid() -> Iterator[Case]:
    for shape in ((), (7,), (2, 3, 4)):
        yield Case("relu_backward", (normal(*shape), normal(*shape)), {})
    yield Case("relu_backward", (normal(3, 4), In((3, 4), "array", values=tuple([0.0, -0.0, 1.0, -1.0] * 3))), {})
    yield Case("relu_backward", (normal(17, 67), normal(17, 67)), {})


def special_elementwise_grid() -> Iterator[Case]:
    """NaN, infinities, signed zeros and the overflow edges of exp (sigmoid, tanh: saturation), also
    as wide uniform ranges; binary ops on special values on both sides (inf - inf, 0 * inf, x / -0.0)."""
    for op in ("relu", "sigmoid", "silu", "tanh", "exp", "neg", "log", "sqrt"):
        yield Case(op, (special(5, 13),), {})
    yield Case("leaky_relu", (special(5, 13),), {"negative_slope": 0.1})
    for op in ("sigmoid", "silu", "tanh", "exp"):
        yield Case(op, (special(67, pool=EDGES, low=-120.0, high=120.0),), {})
        yield Case(op, (In((64,), "uniform", -1e4, 1e4),), {})
    for op in ("add", "sub", "mul", "div"):
        yield Case(op, (special(5, 13), special(5, 13)), {})
        yield Case(op, (special(4, 9, pool=NONFINITE), special(9, pool=NONFINITE + (1.0, -1.0))), {})
    yield Case("relu_backward", (special(5, 13), special(5, 13)), {})


def _unary(op: str) -> Callable[[random.Random], Case]:
    needs_positive = op in ("log", "sqrt")
    return lambda r: Case(op, (In(rand_shape(r), "uniform", 0.05, 4.0) if needs_positive else In(rand_shape(r)),), {})


def _binary(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        a = rand_shape(r)
        b = tuple(1 if r.random() < 0.3 else d for d in a[r.randint(0, len(a)):])
        if r.random() < 0.5:
            a, b = b, a
        return Case(op, (In(a), In(b, "uniform", 0.5, 2.0) if op == "div" else In(b)), {})
    return make


def _relu_backward(r: random.Random) -> Case:
    shape = rand_shape(r)
    return Case("relu_backward", (In(shape), In(shape)), {})


def silu_grid() -> Iterator[Case]:
    for shape in ((), (7,), (2, 3, 4)):
        yield Case("silu", (normal(*shape),), {})
    yield Case("silu", (In((50,), "uniform", -60.0, 60.0),), {})
    for slope in (0.01, 0.2, 0.0, 1.0, -0.5):
        yield Case("leaky_relu", (normal(2, 3, 4),), {"negative_slope": slope})
    yield Case("leaky_relu", (normal(),), {})


def _leaky_relu(r: random.Random) -> Case:
    return Case("leaky_relu", (In(rand_shape(r)),), {"negative_slope": round(r.uniform(-1, 1), 3)})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (elementwise_grid, relu_backward_grid, silu_grid,)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_elementwise_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'relu': _unary("relu"),
    'sigmoid': _unary("sigmoid"),
    'silu': _unary("silu"),
    'leaky_relu': _leaky_relu,
    'tanh': _unary("tanh"),
    'exp': _unary("exp"),
    'log': _unary("log"),
    'sqrt': _unary("sqrt"),
    'neg': _unary("neg"),
    'add': _binary("add"),
    'sub': _binary("sub"),
    'mul': _binary("mul"),
    'div': _binary("div"),
    'relu_backward': _relu_backward,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
