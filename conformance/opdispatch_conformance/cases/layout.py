"""Conformance cases of the layout family: the deterministic grid and the seeded random generators
of its ops (reshape, transpose, flatten, broadcast_to, squeeze, unsqueeze, pad, slice, concat, split, gather,
scatter_add), on float data (in the case's dtype) and on int32, int64 and bool data (fixed dtypes,
compared exactly: labels, indices and masks move through these ops; scatter_add sums float and int
updates only)."""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .base import (NONFINITE, Case, In, normal, rand_shape, special)


def layout_grid() -> Iterator[Case]:
    yield Case("reshape", (normal(2, 3, 4),), {"shape": (4, 6)})
    yield Case("reshape", (normal(2, 3, 4),), {"shape": (-1, 2)})
    yield Case("reshape", (normal(6),), {"shape": (1, 6, 1)})
    yield Case("reshape", (normal(1),), {"shape": ()})
    for axes in (None, (1, 0, 2), (2, 0, 1)):
        yield Case("transpose", (normal(2, 3, 4),), {"axes": axes})
    yield Case("transpose", (normal(5),), {})
    for start in (0, 1, 2, -1):
        yield Case("flatten", (normal(2, 3, 4),), {"start_axis": start})
    # odd sizes larger than a work-group or a tile
    yield Case("reshape", (normal(17, 67),), {"shape": (67, 17)})
    yield Case("transpose", (normal(5, 67, 3),), {"axes": (2, 0, 1)})
    yield Case("transpose", (normal(65, 129),), {})
    yield Case("flatten", (normal(5, 3, 67),), {"start_axis": 1})


def broadcast_to_grid() -> Iterator[Case]:
    for src, dst in (((), (2, 3)), ((3,), (2, 3)), ((2, 1), (2, 4)), ((1, 3, 1), (2, 3, 4)), ((2, 3), (2, 3)),
                     ((1,), (0,)), ((4, 1, 1), (2, 4, 3, 5)), ((5,), (5,)), ((67,), (17, 67)), ((5, 1, 3), (5, 67, 3))):
        yield Case("broadcast_to", (normal(*src),), {"shape": dst})


def movement_grid() -> Iterator[Case]:
    """pad (every mode), slice (every step sign, clamping, empty results) and concat."""
    for mode in ("constant", "reflect", "edge"):
        yield Case("pad", (normal(2, 3, 4),), {"pads": ((1, 2), (2, 1)), "mode": mode})
        yield Case("pad", (normal(5),), {"pads": ((3, 0),), "mode": mode})
        yield Case("pad", (normal(2, 3, 4),), {"pads": ((0, 0), (1, 1), (0, 2)), "mode": mode})
    yield Case("pad", (normal(2, 2),), {"pads": ((1, 1), (1, 1)), "value": -2.5})
    yield Case("pad", (normal(1, 2, 3, 3),), {"pads": ((0, 0), (0, 0), (1, 2), (2, 1)), "value": float("-inf")})
    yield Case("pad", (normal(0, 3),), {"pads": ((1, 1), (0, 0))})
    yield Case("pad", (normal(),), {"pads": ()})
    for starts, ends, axes, steps in (((1,), (3,), None, None), ((0, 1), (None, None), (0, 2), (2, 2)),
                                      ((-1,), (None,), (1,), (-1,)), ((3,), (0,), (2,), (-2,)),
                                      ((-100,), (100,), None, None), ((2,), (1,), None, None),
                                      ((0, 0, 0), (2, 3, 4), None, (1, 3, 3)), ((1,), (-1,), (-1,), (1,))):
        yield Case("slice", (normal(2, 3, 4),), {"starts": starts, "ends": ends, "axes": axes, "steps": steps})
    yield Case("slice", (normal(9, 9),), {"starts": (8, 1), "ends": (None, 9), "steps": (-3, 4)})
    yield Case("concat", (normal(2, 3), normal(4, 3)), {"axis": 0})
    yield Case("concat", (normal(2, 3), normal(2, 1), normal(2, 5)), {"axis": -1})
    yield Case("concat", (normal(1, 2, 2, 3),), {"axis": 2})
    yield Case("concat", (normal(2, 0, 3), normal(2, 4, 3)), {"axis": 1})
    # odd sizes larger than a work-group or a tile
    for mode in ("constant", "reflect", "edge"):
        yield Case("pad", (normal(5, 67),), {"pads": ((2, 3), (7, 5)), "mode": mode})
    yield Case("slice", (normal(7, 130),), {"starts": (1, 129), "ends": (None, None), "axes": None, "steps": (2, -3)})
    yield Case("concat", (normal(5, 67), normal(5, 3), normal(5, 65)), {"axis": 1})


def squeeze_split_grid() -> Iterator[Case]:
    """squeeze (None, one axis, several, negative), unsqueeze (NumPy's negative axes) and split (equal
    parts, sizes with empty parts, negative axis, one part)."""
    for axis in (None, 0, -1, (0, 2), (2, 0), ()):
        yield Case("squeeze", (normal(1, 3, 1),), {"axis": axis})
    yield Case("squeeze", (normal(2, 3),), {})
    yield Case("squeeze", (normal(1),), {})
    yield Case("squeeze", (normal(1, 1, 1),), {"axis": None})
    for axis in (0, -1, 2, (0, 3), (-1, 0), (1, -2)):
        yield Case("unsqueeze", (normal(2, 3),), {"axis": axis})
    yield Case("unsqueeze", (normal(),), {"axis": 0})
    yield Case("unsqueeze", (normal(),), {"axis": (0, -1)})
    for sections, axis in ((3, 0), (1, 1), (2, -1), ((1, 2), 0), ((0, 3, 0), 0), ((2, 0, 2), 2), ((4,), -1)):
        yield Case("split", (normal(3, 2, 4),), {"sections": sections, "axis": axis})
    yield Case("split", (normal(0, 3),), {"sections": 2, "axis": 0})
    # odd sizes larger than a work-group or a tile
    yield Case("split", (normal(5, 67),), {"sections": (30, 1, 36), "axis": 1})
    yield Case("unsqueeze", (normal(67, 5),), {"axis": (1, 3)})
    yield Case("squeeze", (normal(67, 1, 5),), {"axis": 1})


def _idx(shape: tuple, n: int, dtype: str = "int64") -> In:
    """Indices into an axis of size ``n``: negative ones too, repeats likely."""
    return In(shape, "uniform", -n, n - 1, dtype=dtype)


def gather_scatter_grid() -> Iterator[Case]:
    """gather (negative and repeated indices, int32 and int64, every axis, index arrays of rank 0 to 2,
    empty ones) and scatter_add (repeated indices accumulate)."""
    yield Case("gather", (normal(5, 3), In((4,), "array", values=(4, 0, -1, 4), dtype="int64")), {"axis": 0})
    yield Case("gather", (normal(2, 3, 4), _idx((2, 3), 3, "int32")), {"axis": 1})
    yield Case("gather", (normal(2, 3, 4), _idx((), 4)), {"axis": -1})
    yield Case("gather", (normal(6,), _idx((0,), 6)), {"axis": 0})
    yield Case("gather", (normal(3, 0), _idx((2,), 3)), {"axis": 0})
    yield Case("gather", (normal(67, 5), _idx((130,), 67)), {"axis": 0})
    yield Case("scatter_add", (normal(4, 3), In((4,), "array", values=(1, 1, -1, 1), dtype="int64")),
               {"axis": 0, "size": 3})
    yield Case("scatter_add", (normal(2, 2, 3, 4), _idx((2, 3), 5, "int32")), {"axis": 1, "size": 5})
    yield Case("scatter_add", (normal(2, 4), _idx((), 3)), {"axis": 1, "size": 3})
    yield Case("scatter_add", (normal(0, 3), _idx((0,), 4)), {"axis": 0, "size": 4})
    yield Case("scatter_add", (normal(130, 5), _idx((130,), 17)), {"axis": 0, "size": 17})


VALUE_DTYPES = ("int32", "int64", "bool")
"""The fixed non-float dtypes of the value cases (scatter_add: the ints only)."""


def _v(dtype: str, *shape: int) -> In:
    """int32 / int64 data over a wide range (ints in [-2**31, 2**31 - 1]: large magnitudes move exactly),
    or fair bools."""
    return In(tuple(shape), "uniform", -2**31, 2**31 - 1, dtype=dtype) if dtype != "bool" else In(tuple(shape),
                                                                                                     dtype=dtype)


def value_grid() -> Iterator[Case]:
    """Every layout op on int32, int64 and bool data: views, copies with odd sizes, every pad mode (a
    constant value of the dtype), negative steps, several parts, index gathers; int64 values beyond
    2**53 (not representable in float64) stay exact."""
    for dt in VALUE_DTYPES:
        pad_value = 1.0 if dt == "bool" else -7.0
        yield Case("reshape", (_v(dt, 2, 3, 4),), {"shape": (-1, 6)})
        yield Case("reshape", (_v(dt, 17, 67),), {"shape": (67, 17)})
        yield Case("transpose", (_v(dt, 2, 3, 4),), {"axes": (2, 0, 1)})
        yield Case("transpose", (_v(dt, 65, 129),), {})
        yield Case("transpose", (_v(dt, 5, 67, 3),), {"axes": (2, 0, 1)})
        yield Case("flatten", (_v(dt, 2, 3, 4),), {"start_axis": 1})
        yield Case("broadcast_to", (_v(dt, 4, 1),), {"shape": (2, 4, 3)})
        yield Case("broadcast_to", (_v(dt, 67),), {"shape": (40, 67)})
        yield Case("squeeze", (_v(dt, 1, 3, 1),), {})
        yield Case("unsqueeze", (_v(dt, 2, 3),), {"axis": (0, -1)})
        for mode in ("constant", "reflect", "edge"):
            yield Case("pad", (_v(dt, 2, 3, 4),), {"pads": ((1, 2), (2, 1)), "mode": mode, "value": pad_value})
            yield Case("pad", (_v(dt, 5, 67),), {"pads": ((2, 3), (7, 5)), "mode": mode})
        yield Case("slice", (_v(dt, 2, 3, 4),), {"starts": (0, -1), "ends": (None, None), "axes": (0, 2),
                                                  "steps": (2, -2)})
        yield Case("slice", (_v(dt, 7, 130),), {"starts": (1, 129), "ends": (None, None), "steps": (2, -3)})
        yield Case("concat", (_v(dt, 2, 3), _v(dt, 2, 1), _v(dt, 2, 5)), {"axis": -1})
        yield Case("concat", (_v(dt, 5, 67), _v(dt, 0, 67), _v(dt, 3, 67)), {"axis": 0})
        yield Case("split", (_v(dt, 3, 2, 4),), {"sections": (1, 0, 3), "axis": 2})
        yield Case("gather", (_v(dt, 5, 3), In((4,), "array", values=(4, 0, -1, 4), dtype="int64")), {"axis": 0})
        yield Case("gather", (_v(dt, 2, 3, 4), _idx((2, 3), 3, "int32")), {"axis": 1})
        yield Case("gather", (_v(dt, 67, 5), _idx((130,), 67)), {"axis": 0})
    big = In((4,), "array", values=(2**53 + 1, -(2**62) - 3, 2**63 - 1, -(2**63)), dtype="int64")
    yield Case("reshape", (big,), {"shape": (2, 2)})
    yield Case("slice", (big,), {"starts": (3,), "ends": (None,), "steps": (-1,)})
    yield Case("gather", (big, In((3,), "array", values=(2, 0, 2), dtype="int32")), {"axis": 0})
    yield Case("pad", (big,), {"pads": ((1, 1),), "value": -(2.0**62)})
    for dt in ("int32", "int64"):
        yield Case("scatter_add", (In((4, 3), dtype=dt), In((4,), "array", values=(1, 1, -1, 1), dtype="int64")),
                   {"axis": 0, "size": 3})
        yield Case("scatter_add", (In((2, 2, 3, 4), dtype=dt), _idx((2, 3), 5, "int32")), {"axis": 1, "size": 5})
        yield Case("scatter_add", (In((130, 5), dtype=dt), _idx((130,), 17)), {"axis": 0, "size": 17})


def special_layout_grid() -> Iterator[Case]:
    """NaN, infinities and signed zeros move through layout ops unchanged."""
    x = special(3, 4, 5)
    yield Case("reshape", (x,), {"shape": (12, 5)})
    yield Case("transpose", (x,), {"axes": (2, 0, 1)})
    yield Case("flatten", (x,), {"start_axis": 1})
    yield Case("broadcast_to", (special(4, 1),), {"shape": (2, 4, 3)})
    for mode in ("constant", "reflect", "edge"):
        yield Case("pad", (x,), {"pads": ((1, 0), (2, 1)), "mode": mode})
    yield Case("pad", (special(2, 3),), {"pads": ((1, 1), (1, 1)), "value": float("inf")})
    yield Case("slice", (x,), {"starts": (3, 0), "ends": (None, None), "axes": (1, 2), "steps": (-1, 2)})
    yield Case("concat", (x, special(3, 2, 5, pool=NONFINITE)), {"axis": 1})
    yield Case("squeeze", (special(3, 1, 5),), {})
    yield Case("unsqueeze", (x,), {"axis": (-1, 1)})
    yield Case("split", (x,), {"sections": (1, 0, 3), "axis": 1})
    yield Case("gather", (x, _idx((6,), 4)), {"axis": 1})
    yield Case("scatter_add", (x, _idx((4,), 2)), {"axis": 1, "size": 2})


def _dtype(r: random.Random, kinds: tuple = ("", "", "", "int32", "int64", "bool")) -> str:
    """The dtype of a random case's data: mostly the case's float dtype, else int32, int64 or bool."""
    return r.choice(kinds)


def _pad(r: random.Random) -> Case:
    shp = rand_shape(r) or (3,)
    mode = r.choice(["constant", "reflect", "edge"])
    pads = []
    for d in shp[len(shp) - r.randint(0, len(shp)):]:
        limit = d - 1 if mode == "reflect" else 3
        pads.append((r.randint(0, max(limit, 0)), r.randint(0, max(limit, 0))))
    dt = _dtype(r)
    value = round(r.uniform(-2, 2), 2) if not dt else float(r.randint(0, 1) if dt == "bool" else r.randint(-9, 9))
    return Case("pad", (In(shp, dtype=dt),), {"pads": tuple(pads), "mode": mode, "value": value})


def _slice(r: random.Random) -> Case:
    shp = rand_shape(r) or (4,)
    axes = tuple(sorted(r.sample(range(len(shp)), r.randint(1, len(shp)))))
    starts, ends, steps = [], [], []
    for a in axes:
        d = shp[a]
        starts.append(r.randint(-d - 1, d + 1))
        ends.append(r.choice([None, r.randint(-d - 1, d + 1)]))
        steps.append(r.choice([1, 1, 2, 3, -1, -2]))
    return Case("slice", (In(shp, dtype=_dtype(r)),), {"starts": tuple(starts), "ends": tuple(ends), "axes": axes,
                                      "steps": tuple(steps)})


def _concat(r: random.Random) -> Case:
    shp = rand_shape(r) or (3,)
    axis = r.randrange(len(shp))
    dt = _dtype(r)
    parts = tuple(In(shp[:axis] + (r.randint(0, 3),) + shp[axis + 1:], dtype=dt) for _ in range(r.randint(1, 4)))
    return Case("concat", parts, {"axis": axis - len(shp) if r.random() < 0.3 else axis})


def _reshape(r: random.Random) -> Case:
    shape = rand_shape(r)
    new = list(shape)
    r.shuffle(new)
    if new and r.random() < 0.5:
        new[r.randrange(len(new))] = -1
    return Case("reshape", (In(shape, dtype=_dtype(r)),), {"shape": tuple(new)})


def _transpose(r: random.Random) -> Case:
    shape = rand_shape(r)
    axes = list(range(len(shape)))
    r.shuffle(axes)
    return Case("transpose", (In(shape, dtype=_dtype(r)),), {"axes": tuple(axes) if r.random() < 0.8 else None})


def _flatten(r: random.Random) -> Case:
    shape = rand_shape(r) or (3,)
    return Case("flatten", (In(shape, dtype=_dtype(r)),), {"start_axis": r.randint(-len(shape), len(shape) - 1)})


def _broadcast_to(r: random.Random) -> Case:
    dst = rand_shape(r)
    src = tuple(1 if r.random() < 0.4 else d for d in dst[r.randint(0, len(dst)):])
    return Case("broadcast_to", (In(src, dtype=_dtype(r)),), {"shape": dst})


def _squeeze(r: random.Random) -> Case:
    shape = tuple(1 if r.random() < 0.4 else d for d in rand_shape(r))
    ones = [a for a, d in enumerate(shape) if d == 1]
    dt = _dtype(r)
    if not ones or r.random() < 0.3:
        return Case("squeeze", (In(shape, dtype=dt),), {"axis": None})
    axes = r.sample(ones, r.randint(1, len(ones)))
    axes = [a - len(shape) if r.random() < 0.3 else a for a in axes]
    return Case("squeeze", (In(shape, dtype=dt),), {"axis": axes[0] if len(axes) == 1 else tuple(axes)})


def _unsqueeze(r: random.Random) -> Case:
    shape = rand_shape(r, max_rank=3)
    ndim = len(shape) + r.randint(1, 2)
    axes = [a - ndim if r.random() < 0.4 else a for a in r.sample(range(ndim), ndim - len(shape))]
    return Case("unsqueeze", (In(shape, dtype=_dtype(r)),), {"axis": axes[0] if len(axes) == 1 else tuple(axes)})


def _split(r: random.Random) -> Case:
    shape = rand_shape(r) or (4,)
    axis = r.randrange(len(shape))
    size = shape[axis]
    if r.random() < 0.5:
        parts = r.choice([k for k in range(1, max(size, 1) + 1) if size % k == 0])
        sections: object = parts
    else:
        cuts = sorted(r.randint(0, size) for _ in range(r.randint(0, 3)))
        sections = tuple(b - a for a, b in zip([0] + cuts, cuts + [size]))
    return Case("split", (In(shape, dtype=_dtype(r)),),
                {"sections": sections, "axis": axis - len(shape) if r.random() < 0.3 else axis})


def _gather(r: random.Random) -> Case:
    shape = rand_shape(r) or (3,)
    axis = r.randrange(len(shape))
    ishape = tuple(r.randint(0, 4) for _ in range(r.randint(0, 2)))
    return Case("gather", (In(shape, dtype=_dtype(r)), _idx(ishape, max(shape[axis], 1), r.choice(["int32", "int64"]))),
                {"axis": axis - len(shape) if r.random() < 0.3 else axis})


def _scatter_add(r: random.Random) -> Case:
    shape = rand_shape(r, max_rank=3)
    axis = r.randint(0, len(shape))
    size = r.randint(1, 5)
    ishape = tuple(r.randint(0, 4) for _ in range(r.randint(0, 2)))
    dt = _dtype(r, ("", "", "", "int32", "int64"))
    return Case("scatter_add", (In(shape[:axis] + ishape + shape[axis:], dtype=dt), _idx(ishape, size)),
                {"axis": axis, "size": size})


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (layout_grid, broadcast_to_grid, movement_grid,
                                                   squeeze_split_grid, gather_scatter_grid, value_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_layout_grid,)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'reshape': _reshape,
    'transpose': _transpose,
    'flatten': _flatten,
    'broadcast_to': _broadcast_to,
    'pad': _pad,
    'slice': _slice,
    'concat': _concat,
    'squeeze': _squeeze,
    'unsqueeze': _unsqueeze,
    'split': _split,
    'gather': _gather,
    'scatter_add': _scatter_add,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
