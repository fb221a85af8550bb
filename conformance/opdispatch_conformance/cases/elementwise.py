"""Conformance cases of the elementwise family: the deterministic grid and the seeded random generators
of its ops (relu, leaky_relu, sigmoid, silu, tanh, exp, log, sqrt, neg, add, sub, mul, div, relu_backward,
clip, hardsigmoid, hardswish, erf, gelu, abs, pow, maximum, minimum, cast)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import (EDGES, INF, NAN, NONFINITE, Case, In, normal, positive,
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


ZOO_UNARY = ("hardsigmoid", "hardswish", "erf", "abs")
"""The unary ops without attributes added for the CNN zoo (clip and gelu have attributes)."""
CLIP_BOUNDS: tuple[dict, ...] = ({"min": -0.5, "max": 0.7}, {"min": 0.0}, {"max": 0.25}, {"min": 0.0, "max": 6.0},
                                 {}, {"min": 1.0, "max": -1.0}, {"min": -1e30, "max": 1e30})
"""Both bounds, one, none, ReLU6's, min > max (the output is max everywhere), bounds beyond float16."""
KINKS = (-3.0, 3.0, -1.0, 1.0, 0.0, -0.0, 0.5, -0.5)
"""The corners of hardsigmoid and hardswish (+-3), clip's bounds here (-1, 1, +-0.5), abs's 0."""


def zoo_grid() -> Iterator[Case]:
    """Shapes (scalar, odd, 3-d), wide ranges (saturation of hardsigmoid, erf and gelu), odd sizes past
    any work-group (1031, 17x67) and the broadcasts of the binary ops; pow on positive bases (its
    gradient takes log(x)), and on integer exponents of negative bases."""
    for op in ZOO_UNARY:
        for shape in ((), (7,), (2, 3, 4)):
            yield Case(op, (normal(*shape),), {})
        yield Case(op, (In((50,), "uniform", -8.0, 8.0),), {})
        yield Case(op, (normal(1031),), {})
    for bounds in CLIP_BOUNDS:
        yield Case("clip", (normal(2, 3, 4),), bounds)
    yield Case("clip", (normal(),), {"min": 0.1})
    yield Case("clip", (normal(17, 67),), {"min": -0.3, "max": 0.4})
    for approximate in ("none", "tanh"):
        for shape in ((), (7,), (2, 3, 4)):
            yield Case("gelu", (normal(*shape),), {"approximate": approximate})
        yield Case("gelu", (In((64,), "uniform", -10.0, 10.0),), {"approximate": approximate})
        yield Case("gelu", (normal(17, 67),), {"approximate": approximate})
    yield Case("gelu", (normal(5),), {})
    for op in ("maximum", "minimum"):
        for a, b in [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((3, 1), (1, 4))]:
            yield Case(op, (normal(*a), normal(*b)), {})
        yield Case(op, (normal(1031), normal(1031)), {})
        yield Case(op, (normal(17, 67), normal(67)), {})
    for a, b in [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((3, 1), (1, 4))]:
        yield Case("pow", (positive(*a), normal(*b)), {})
    yield Case("pow", (In((17, 67), "uniform", 0.2, 3.0), In((67,), "uniform", -3.0, 3.0)), {})
    yield Case("pow", (In((5, 1, 9), "uniform", 0.5, 4.0), In((7, 1), "uniform", -6.0, 6.0)), {})


def zoo_special_grid() -> Iterator[Case]:
    """NaN, +-inf, +-0.0, exp's overflow edges and the kinks; large magnitudes (erf and gelu saturate,
    hardswish is x); pow's C99 rules (x ** 0 == 1 and 1 ** y == 1 even for NaN, 0 ** -y == inf,
    negative bases: NaN for non-integer exponents, signed for odd integers); ties of maximum and
    minimum (equal values, +-0.0, both infinite)."""
    for op in ZOO_UNARY:
        yield Case(op, (special(5, 13),), {})
        yield Case(op, (special(67, pool=KINKS + NONFINITE, low=-5.0, high=5.0),), {})
        yield Case(op, (In((64,), "uniform", -1e4, 1e4),), {})
    yield Case("erf", (In((64,), "uniform", -1e-6, 1e-6),), {})
    yield Case("erf", (In((200,), "uniform", -6.5, 6.5),), {})
    for bounds in CLIP_BOUNDS:
        yield Case("clip", (special(5, 13, pool=KINKS + NONFINITE),), bounds)
    for approximate in ("none", "tanh"):
        yield Case("gelu", (special(5, 13),), {"approximate": approximate})
        yield Case("gelu", (In((64,), "uniform", -1e4, 1e4),), {"approximate": approximate})
    for op in ("maximum", "minimum"):
        yield Case(op, (special(5, 13), special(5, 13)), {})
        yield Case(op, (special(4, 9, pool=NONFINITE), special(9, pool=NONFINITE + (1.0, -1.0))), {})
        ties = (0.0, -0.0, 1.0, -2.0, INF, -INF, NAN, 3.0, 0.0, 5.0, -0.0, 0.5)
        yield Case(op, (In((12,), "array", values=ties), In((12,), "array", values=ties[::-1])), {})
    bases = (0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -8.0, INF, -INF, NAN, 1e-30)
    exponents = (0.0, -0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 1.0 / 3.0, INF, -INF, NAN, 40.0, -40.0)
    yield Case("pow", (In((len(bases), 1), "array", values=bases), In((len(exponents),), "array", values=exponents)),
               {})
    yield Case("pow", (special(5, 13), special(5, 13)), {})
    yield Case("pow", (In((64,), "uniform", 0.0, 1e4), In((64,), "uniform", -20.0, 20.0)), {})


CAST_TARGETS = ("float32", "float64", "int32", "int64", "bool")
"""The dtypes the cast cases convert to (float16 where a device has it is left to devices that list it)."""


def cast_grid() -> Iterator[Case]:
    """Floats (the case's dtype) to every dtype: fractions truncate toward zero, negatives too; int32,
    int64 and bool sources to every dtype (ints beyond float32's exact range round to nearest even)."""
    for target in CAST_TARGETS:
        for shape in ((), (7,), (2, 3, 4), (1031,)):
            yield Case("cast", (normal(*shape),), {"dtype": target})
        yield Case("cast", (In((64,), "uniform", -1e4, 1e4),), {"dtype": target})
        yield Case("cast", (In((9,), "array", values=(-2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 0.999)),),
                   {"dtype": target})
        for source in ("int32", "int64", "bool"):
            yield Case("cast", (In((3, 5), dtype=source),), {"dtype": target})
        yield Case("cast", (In((6,), "array", values=(2**24 + 1, -(2**24) - 3, 2**31 - 1, -(2**31), 0, 7),
                               dtype="int64"),), {"dtype": target if target != "int32" else "int64"})


def cast_special_grid() -> Iterator[Case]:
    """NaN, +-inf and +-0.0 to floats (kept) and to bool (NaN and inf are True, -0.0 False); integer
    targets are left out (NumPy leaves NaN and out-of-range values undefined)."""
    for target in ("float32", "float64", "bool"):
        yield Case("cast", (special(5, 13),), {"dtype": target})
        yield Case("cast", (special(67, pool=NONFINITE + (-0.0, 0.0)),), {"dtype": target})


def _cast(r: random.Random) -> Case:
    source = r.choice(("", "", "int32", "int64", "bool"))
    return Case("cast", (In(rand_shape(r), dtype=source),), {"dtype": r.choice(CAST_TARGETS)})


def _clip(r: random.Random) -> Case:
    lo = round(r.uniform(-2, 1), 2) if r.random() < 0.8 else None
    hi = round(r.uniform(-1, 2), 2) if r.random() < 0.8 else None
    return Case("clip", (In(rand_shape(r)),), {"min": lo, "max": hi})


def _gelu(r: random.Random) -> Case:
    return Case("gelu", (In(rand_shape(r)),), {"approximate": r.choice(("none", "tanh"))})


def _pow(r: random.Random) -> Case:
    a = rand_shape(r)
    b = tuple(1 if r.random() < 0.3 else d for d in a[r.randint(0, len(a)):])
    if r.random() < 0.5:
        a, b = b, a
    return Case("pow", (In(a, "uniform", 0.1, 3.0), In(b, "uniform", -3.0, 3.0)), {})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (elementwise_grid, relu_backward_grid, silu_grid, zoo_grid,
                                                   cast_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_elementwise_grid, zoo_special_grid, cast_special_grid)
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
    'clip': _clip,
    'hardsigmoid': _unary("hardsigmoid"),
    'hardswish': _unary("hardswish"),
    'erf': _unary("erf"),
    'gelu': _gelu,
    'abs': _unary("abs"),
    'pow': _pow,
    'maximum': _binary("maximum"),
    'minimum': _binary("minimum"),
    'cast': _cast,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
