"""Conformance cases of the elementwise family: the deterministic grid and the seeded random generators
of its ops (relu, sigmoid, tanh, exp, log, sqrt, neg, add, sub, mul, div, relu_backward)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import Case, In, normal, positive, rand_shape

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


def relu_backward_grid() -> Iterator[Case]:
    for shape in ((), (7,), (2, 3, 4)):
        yield Case("relu_backward", (normal(*shape), normal(*shape)), {})
    yield Case("relu_backward", (normal(3, 4), In((3, 4), "array", values=tuple([0.0, -0.0, 1.0, -1.0] * 3))), {})


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
