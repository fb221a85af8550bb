"""Conformance cases of the reduce family: the deterministic grid and the seeded random generators
of its ops (sum, mean, max, min and their gradients, argmax, argmin)."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

import numpy as np

from .base import (NONFINITE, Case, In, forward_shape, normal, output_shape_of, rand_shape, special)


def reduce_grid() -> Iterator[Case]:
    for op in ("sum", "mean", "max", "min"):
        for axis in (None, 0, 1, -1, (0, 2)):
            for keepdims in (False, True):
                yield Case(op, (normal(2, 3, 4),), {"axis": axis, "keepdims": keepdims})
        yield Case(op, (normal(5),), {})
        yield Case(op, (normal(),), {})
        yield Case(op, (normal(3, 4),), {"axis": (1, 0)})
    for op in ("sum", "mean", "max", "min"):  # axes longer than a work-group or an unrolled loop, odd sizes
        yield Case(op, (normal(3, 1000),), {"axis": -1})
        yield Case(op, (normal(131, 7),), {"axis": 0, "keepdims": True})
        yield Case(op, (normal(1031),), {})
    for op in ("max", "min"):  # int and bool values: exact results in the input's dtype
        for dtype in ("int32", "int64", "bool"):
            for axis in (None, 0, -1, (0, 2)):
                yield Case(op, (In((2, 3, 4), "uniform", -1000, 1000, dtype=dtype),),
                           {"axis": axis, "keepdims": axis == 0})
            yield Case(op, (In((3, 1000), "uniform", -10**6, 10**6, dtype=dtype),), {"axis": -1})
            yield Case(op, (In((131, 7), dtype=dtype),), {"axis": 0, "keepdims": True})
            yield Case(op, (In((), dtype=dtype),), {})
        for dtype, info in (("int32", np.iinfo(np.int32)), ("int64", np.iinfo(np.int64))):
            # the dtype's extremes (int64's beyond float64's exact integers): no float round trip
            extremes = (int(info.max), -1, 0, int(info.min), int(info.max) - 1, int(info.min) + 1)
            for axis in (None, 0, 1):
                yield Case(op, (In((2, 3), "array", values=extremes, dtype=dtype),), {"axis": axis})


def max_backward_grid() -> Iterator[Case]:
    for op in ("max_backward", "min_backward"):
        fwd = op.removesuffix("_backward")
        for axis in (None, 0, 1, -1, (0, 2)):
            for keepdims in (False, True):
                attrs = {"axis": axis, "keepdims": keepdims}
                yield Case(op, (normal(2, 3, 4), In(forward_shape(fwd, ((2, 3, 4),), attrs))), attrs)
        yield Case(op, (normal(5), normal()), {})
        yield Case(op, (normal(), normal()), {})
        yield Case(op, (normal(3, 4), normal()), {"axis": (1, 0)})
        ties = In((3, 4), "array", values=(1, 5, 5, 2, 7, 7, 7, 7, 0, -1, 3, 3))
        for axis in (None, 0, 1):
            for keepdims in (False, True):
                attrs = {"axis": axis, "keepdims": keepdims}
                yield Case(op, (ties, In(forward_shape(fwd, ((3, 4),), attrs))), attrs)
        yield Case(op, (normal(3, 1000), normal(3)), {"axis": -1})
        yield Case(op, (normal(131, 7), normal(1, 7)), {"axis": 0, "keepdims": True})


TIES = (1, 5, 5, 2, 7, 7, 7, 7, 0, -1, 3, -1)


def arg_grid() -> Iterator[Case]:
    """argmax / argmin over the flattened tensor and each axis, float and int inputs, first-of-ties."""
    for op in ("argmax", "argmin"):
        for axis in (None, 0, 1, -1, 2):
            for keepdims in (False, True):
                yield Case(op, (normal(2, 3, 4),), {"axis": axis, "keepdims": keepdims})
                yield Case(op, (In((2, 3, 4), dtype="int32"),), {"axis": axis, "keepdims": keepdims})
        yield Case(op, (normal(5),), {})
        yield Case(op, (normal(),), {})
        yield Case(op, (In((), dtype="int64"),), {"keepdims": True})
        for dtype in ("", "int32", "int64"):
            ties = In((3, 4), "array", values=TIES, dtype=dtype)
            for axis in (None, 0, 1):
                yield Case(op, (ties,), {"axis": axis})
        yield Case(op, (normal(3, 1000),), {"axis": -1})
        yield Case(op, (normal(131, 7),), {"axis": 0, "keepdims": True})
        yield Case(op, (In((1031,), dtype="int64"),), {})


def special_reduce_grid() -> Iterator[Case]:
    """NaN propagates through every reduction (max too: a NaN is the maximum), inf - inf is NaN, and
    -inf / +inf rows; some rows with NaN and some without."""
    for op in ("sum", "mean", "max"):
        yield Case(op, (special(4, 70),), {"axis": -1})
        yield Case(op, (special(20, 3, pool=(float("nan"),)),), {"axis": 1})
        yield Case(op, (special(20, 3, pool=(float("inf"), float("-inf"))),), {"axis": 1})
        yield Case(op, (special(67, 2, pool=(-0.0, 1e4, 100.0)),), {"axis": None})  # no cancellation: one sign
    for op in ("min",):
        yield Case(op, (special(4, 70),), {"axis": -1})
        yield Case(op, (special(20, 3, pool=(float("nan"),)),), {"axis": 1})
        yield Case(op, (special(20, 3, pool=(float("inf"), float("-inf"))),), {"axis": 1})
    yield Case("max", (special(6, 5, pool=(float("-inf"),), low=-1e30, high=-1e29),), {"axis": 0})
    yield Case("min", (special(6, 5, pool=(float("inf"),), low=1e29, high=1e30),), {"axis": 0})
    for op in ("max_backward", "min_backward"):
        for pool in ((float("nan"),), (float("inf"), float("-inf")), NONFINITE):
            yield Case(op, (special(20, 3, pool=pool), normal(20)), {"axis": 1})
        yield Case(op, (special(4, 70), normal(4, 1)), {"axis": -1, "keepdims": True})
    for op in ("argmax", "argmin"):  # the first NaN wins (NumPy); +-inf are ordinary extremes
        yield Case(op, (special(20, 3, pool=(float("nan"),)),), {"axis": 1})
        yield Case(op, (special(7, 9),), {"axis": 0})
        yield Case(op, (special(7, 9),), {})
        yield Case(op, (special(20, 3, pool=(float("inf"), float("-inf"), -0.0)),), {"axis": 1})


def _reduce(op: str) -> Callable[[random.Random], Case]:
    """Random reductions; max and min also of int32, int64 and bool tensors."""
    dtypes = ("", "", "", "int32", "int64", "bool") if op in ("max", "min") else ("",)

    def make(r: random.Random) -> Case:
        shape = rand_shape(r)
        axis: Any = None
        if shape and r.random() < 0.7:
            axis = tuple(sorted(r.sample(range(-len(shape), 0), r.randint(1, len(shape)))))
            axis = axis[0] if len(axis) == 1 and r.random() < 0.5 else axis
        dtype = r.choice(dtypes)
        x = In(shape, "uniform", -100, 100, dtype=dtype) if dtype else In(shape)
        return Case(op, (x,), {"axis": axis, "keepdims": r.random() < 0.5})
    return make


def _backward(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        fwd = _reduce(op.removesuffix("_backward"))(r)
        return Case(op, (fwd.inputs[0], In(output_shape_of(fwd))), fwd.attrs)
    return make


def _arg(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        shape = rand_shape(r)
        axis = r.randrange(-len(shape), len(shape)) if shape and r.random() < 0.7 else None
        dtype = r.choice(("", "", "int32", "int64"))
        return Case(op, (In(shape, dtype=dtype),), {"axis": axis, "keepdims": r.random() < 0.5})
    return make


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (reduce_grid, max_backward_grid, arg_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_reduce_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'sum': _reduce("sum"),
    'mean': _reduce("mean"),
    'max': _reduce("max"),
    'max_backward': _backward("max_backward"),
    'min': _reduce("min"),
    'min_backward': _backward("min_backward"),
    'argmax': _arg("argmax"),
    'argmin': _arg("argmin"),
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
