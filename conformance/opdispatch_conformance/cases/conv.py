"""Conformance cases of the conv family: the deterministic grid and the seeded random generators
of its ops (conv2d, conv2d_bias_relu, conv2d_bias_clip, conv2d_backward_input, conv2d_backward_weight,
conv_transpose2d)."""

from __future__ import annotations

import random
from typing import Callable, Iterator, cast

from .base import (NONFINITE, PADDINGS, Case, In, forward_shape, normal, output_shape_of, rand_pair, rand_padding,
                   special)


def conv2d_grid() -> Iterator[Case]:
    for padding in PADDINGS:
        for stride in (1, 2, (2, 1)):
            yield Case("conv2d", (normal(2, 3, 7, 6), normal(4, 3, 3, 2), None), {"stride": stride, "padding": padding})
    # SAME with even and odd total padding; dilation; groups incl. depthwise; bias; edge sizes
    yield Case("conv2d", (normal(1, 2, 8, 8), normal(3, 2, 4, 4), normal(3)), {"padding": "SAME"})  # odd total (3)
    yield Case("conv2d", (normal(1, 2, 8, 8), normal(3, 2, 3, 3), normal(3)), {"padding": "SAME"})  # even total (2)
    yield Case("conv2d", (normal(1, 2, 9, 9), normal(3, 2, 3, 3), None), {"padding": "SAME", "stride": 2})
    yield Case("conv2d", (normal(2, 2, 9, 8), normal(2, 2, 3, 3), None), {"padding": "SAME", "dilation": 2})
    yield Case("conv2d", (normal(2, 2, 9, 8), normal(2, 2, 3, 2), normal(2)), {"dilation": (2, 3), "padding": 1})
    yield Case("conv2d", (normal(2, 4, 6, 6), normal(6, 2, 3, 3), normal(6)), {"groups": 2, "padding": 1})
    yield Case("conv2d", (normal(2, 4, 6, 6), normal(4, 1, 3, 3), None), {"groups": 4, "padding": "SAME"})  # depthwise
    # depth multiplier
    yield Case("conv2d", (normal(1, 3, 5, 5), normal(6, 1, 3, 3), normal(6)), {"groups": 3, "stride": 2})
    yield Case("conv2d", (normal(1, 1, 1, 1), normal(1, 1, 1, 1), None), {})                           # 1x1 image
    yield Case("conv2d", (normal(1, 1, 1, 1), normal(2, 1, 3, 3), normal(2)), {"padding": "SAME"})
    yield Case("conv2d", (normal(3, 5, 4, 4), normal(2, 5, 1, 1), normal(2)), {})                          # pointwise
    yield Case("conv2d", (normal(2, 3, 5, 7), normal(2, 3, 5, 7), None), {})                           # kernel = input
    yield Case("conv2d", (normal(1, 2, 10, 3), normal(1, 2, 1, 3), None), {"stride": (3, 1)})          # 1xK, non-square
    # batches of 5, 7 and 17 (not multiples of a batch chunk or tile), rows wider than 64
    yield Case("conv2d", (normal(5, 2, 6, 67), normal(3, 2, 3, 3), normal(3)), {"padding": 1})
    yield Case("conv2d", (normal(7, 3, 5, 9), normal(4, 3, 2, 2), None), {"stride": 2})
    yield Case("conv2d", (normal(17, 2, 4, 5), normal(2, 2, 3, 3), normal(2)), {"padding": "SAME"})


RELU6 = {"min": 0.0, "max": 6.0}
CLIP_BOUNDS = (RELU6, {"min": -0.5, "max": 0.25}, {"min": None, "max": 1.0}, {"min": -1.0, "max": None},
               {"min": 1.0, "max": -1.0})
"""conv2d_bias_clip's bounds in the grid: ReLU6, tight ones, one side unbounded, min > max (gives max)."""


def fused_grid() -> Iterator[Case]:
    """conv2d_bias_relu and conv2d_bias_clip (the bounds in turn) on every conv2d grid call."""
    for i, case in enumerate(conv2d_grid()):
        yield Case("conv2d_bias_relu", case.inputs, case.attrs)
        yield Case("conv2d_bias_clip", case.inputs, dict(case.attrs, **CLIP_BOUNDS[i % len(CLIP_BOUNDS)]))


def conv_backward_cases(x: tuple, w: tuple, attrs: dict) -> Iterator[Case]:
    """Both conv2d gradients of ``conv2d(x, w, **attrs)``."""
    dy = In(forward_shape("conv2d", (x, w, None), attrs))
    yield Case("conv2d_backward_input", (dy, In(w)), dict(attrs, input_shape=x))
    yield Case("conv2d_backward_weight", (In(x), dy), dict(attrs, weight_shape=w))


def grad_conv_grid() -> Iterator[Case]:
    for padding in PADDINGS:
        for stride in (1, 2, (2, 1)):
            yield from conv_backward_cases((2, 3, 7, 6), (4, 3, 3, 2), {"stride": stride, "padding": padding})
    yield from conv_backward_cases((1, 2, 8, 8), (3, 2, 4, 4), {"padding": "SAME"})            # odd total (3)
    yield from conv_backward_cases((1, 2, 8, 8), (3, 2, 3, 3), {"padding": "SAME"})            # even total (2)
    yield from conv_backward_cases((1, 2, 9, 9), (3, 2, 3, 3), {"padding": "SAME", "stride": 2})
    yield from conv_backward_cases((1, 2, 8, 7), (2, 2, 2, 4), {"padding": "SAME", "stride": (3, 2)})
    yield from conv_backward_cases((2, 2, 9, 8), (2, 2, 3, 3), {"padding": "SAME", "dilation": 2})
    yield from conv_backward_cases((2, 2, 9, 8), (2, 2, 3, 2), {"dilation": (2, 3), "padding": 1})
    yield from conv_backward_cases((1, 2, 10, 9), (3, 2, 2, 3), {"dilation": 2, "stride": 3,
                                                                 "padding": ((2, 0), (1, 3))})
    yield from conv_backward_cases((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1})
    yield from conv_backward_cases((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": "SAME"})  # depthwise
    yield from conv_backward_cases((1, 3, 5, 5), (6, 1, 3, 3), {"groups": 3, "stride": 2})        # multiplier
    yield from conv_backward_cases((1, 1, 1, 1), (1, 1, 1, 1), {})
    yield from conv_backward_cases((1, 1, 1, 1), (2, 1, 3, 3), {"padding": "SAME"})
    yield from conv_backward_cases((3, 5, 4, 4), (2, 5, 1, 1), {})                                # pointwise
    yield from conv_backward_cases((2, 3, 5, 7), (2, 3, 5, 7), {})                                # kernel = input
    yield from conv_backward_cases((1, 2, 10, 3), (1, 2, 1, 3), {"stride": (3, 1)})               # rows skipped
    yield from conv_backward_cases((2, 3, 7, 7), (4, 3, 2, 2), {"stride": 3})                     # gaps between taps
    yield from conv_backward_cases((2, 16, 12, 12), (32, 16, 3, 3), {"padding": 1})               # longer sums
    # batches of 5, 7 and 17, rows wider than 64
    yield from conv_backward_cases((5, 2, 6, 67), (3, 2, 3, 3), {"padding": 1})
    yield from conv_backward_cases((7, 3, 5, 9), (4, 3, 2, 2), {"stride": 2})
    yield from conv_backward_cases((17, 2, 4, 5), (2, 2, 3, 3), {"padding": "SAME"})


def empty_batch_conv_grid() -> Iterator[Case]:
    """An empty batch (N = 0): empty results of the right shape, a zero weight gradient; on the
    paths a kernel may special-case (bias, groups, stride, SAME, pointwise, many channels)."""
    for op, extra in (("conv2d", {}), ("conv2d_bias_relu", {}), ("conv2d_bias_clip", RELU6)):
        yield Case(op, (normal(0, 3, 7, 6), normal(4, 3, 3, 2), normal(4)), dict(extra, padding=1))
        yield Case(op, (normal(0, 4, 6, 6), normal(4, 2, 3, 3), None),
                   dict(extra, groups=2, stride=2, padding="SAME"))
        yield Case(op, (normal(0, 5, 4, 4), normal(2, 5, 1, 1), None), dict(extra))  # pointwise
    yield from conv_backward_cases((0, 3, 7, 6), (4, 3, 3, 2), {"padding": 1})
    yield from conv_backward_cases((0, 16, 6, 6), (16, 16, 3, 3), {"padding": 1})  # wide: other GEMM layouts
    yield from conv_backward_cases((0, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "stride": 2, "padding": "SAME"})
    yield from conv_backward_cases((0, 5, 4, 4), (2, 5, 1, 1), {})


def special_conv_grid() -> Iterator[Case]:
    """NaN and infinities in the data input propagate through the sums (inf - inf: NaN), large values
    do not overflow; conv2d_bias_relu and conv2d_bias_clip keep NaN (relu(NaN) and clip(NaN) are NaN).
    The weights stay finite: 0 * inf from zero padding would be NaN in some implementations and
    skipped in others."""
    for op, extra in (("conv2d", {}), ("conv2d_bias_relu", {}), ("conv2d_bias_clip", RELU6)):
        yield Case(op, (special(2, 3, 7, 6), normal(4, 3, 3, 2), normal(4)), dict(extra, padding=1))
        yield Case(op, (special(5, 2, 5, 67, pool=NONFINITE), normal(3, 2, 3, 3), None), dict(extra, stride=2))
    x, w, attrs = (2, 3, 7, 6), (4, 3, 3, 2), {"padding": 1}
    dy = forward_shape("conv2d", (x, w, None), attrs)
    yield Case("conv2d_backward_input", (special(*dy), normal(*w)), dict(attrs, input_shape=x))
    yield Case("conv2d_backward_weight", (special(*x), normal(*dy)), dict(attrs, weight_shape=w))


def conv_transpose_grid() -> Iterator[Case]:
    """conv_transpose2d: strides with and without output_padding, padding forms (asymmetric included,
    and bottom padding smaller than output_padding: zero rows appended), dilation (output_padding
    >= stride but < dilation), groups incl. depthwise, odd sizes, 1x1, an empty batch, batches of 5/17."""
    ct = "conv_transpose2d"
    for padding in (0, 1, (1, 2), ((0, 1), (2, 0))):
        for stride, out_pad in ((1, 0), (2, 0), (2, 1), ((2, 3), (1, 2))):
            yield Case(ct, (normal(2, 3, 5, 4), normal(3, 4, 3, 2), None),
                       {"stride": stride, "padding": padding, "output_padding": out_pad})
    yield Case(ct, (normal(2, 2, 5, 6), normal(2, 3, 3, 3), normal(3)), {"stride": 2, "padding": 1})
    yield Case(ct, (normal(1, 2, 4, 5), normal(2, 2, 3, 2), normal(2)), {"dilation": (2, 3), "padding": 1})
    yield Case(ct, (normal(1, 2, 4, 5), normal(2, 2, 3, 3), None), {"dilation": 3, "output_padding": 2})
    yield Case(ct, (normal(2, 2, 3, 4), normal(2, 1, 2, 3), normal(1)),
               {"stride": (1, 2), "dilation": (3, 2), "output_padding": (2, 1), "padding": ((2, 0), (0, 1))})
    yield Case(ct, (normal(2, 4, 5, 5), normal(4, 3, 3, 3), normal(6)), {"groups": 2, "stride": 2, "padding": 1,
                                                                      "output_padding": 1})
    yield Case(ct, (normal(2, 4, 6, 6), normal(4, 1, 3, 3), None), {"groups": 4, "padding": 1})  # depthwise
    yield Case(ct, (normal(1, 3, 4, 5), normal(3, 2, 2, 2), normal(6)), {"groups": 3, "stride": 2, "dilation": 2})
    yield Case(ct, (normal(1, 1, 1, 1), normal(1, 1, 1, 1), None), {})                                  # 1x1
    yield Case(ct, (normal(1, 1, 1, 1), normal(1, 2, 3, 3), normal(2)), {"stride": 2, "output_padding": 1})
    yield Case(ct, (normal(3, 5, 4, 4), normal(5, 2, 1, 1), normal(2)), {})                             # pointwise
    yield Case(ct, (normal(1, 2, 3, 1), normal(2, 2, 4, 1), None), {"stride": (3, 1), "padding": (2, 0)})
    yield Case(ct, (normal(2, 8, 6, 6), normal(8, 8, 4, 4), None), {"stride": 2, "padding": 1})       # longer sums
    yield Case(ct, (normal(5, 2, 3, 33), normal(2, 3, 3, 3), normal(3)), {"stride": 2, "padding": 1})  # wide rows
    yield Case(ct, (normal(17, 2, 3, 4), normal(2, 2, 2, 2), None), {"stride": 2})
    yield Case(ct, (normal(0, 3, 4, 4), normal(3, 2, 3, 3), normal(2)), {"stride": 2, "padding": 1})   # empty batch


def special_conv_transpose_grid() -> Iterator[Case]:
    """NaN and infinities in x propagate to the outputs their pixels reach (inf - inf: NaN); the weights
    stay finite."""
    yield Case("conv_transpose2d", (special(2, 3, 5, 4), normal(3, 2, 3, 3), normal(2)), {"stride": 2, "padding": 1})
    yield Case("conv_transpose2d", (special(1, 2, 4, 6, pool=NONFINITE), normal(2, 2, 2, 2), None), {"stride": 2})


def _conv_transpose2d(r: random.Random) -> Case:
    groups = r.choice([1, 1, 2, 3])
    cg, og = r.randint(1, 3), r.randint(1, 3)
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    x = In((r.randint(1, 3), groups * cg, r.randint(1, 6), r.randint(1, 6)))
    w = In((groups * cg, og, kh, kw))
    bias = In((groups * og,)) if r.random() < 0.5 else None
    stride, dilation = rand_pair(r, 1, 3), rand_pair(r, 1, 2)
    padding = r.choice([0, r.randrange(3), (r.randrange(3), r.randrange(3)),
                        ((r.randrange(3), r.randrange(3)), (r.randrange(3), r.randrange(3)))])
    return Case("conv_transpose2d", (x, w, bias), {"stride": stride, "padding": padding, "dilation": dilation,
                                                   "output_padding": rand_pair(r, 0, 2), "groups": groups})


def _conv2d(r: random.Random) -> Case:
    groups = r.choice([1, 1, 2, 3])
    cg, og = r.randint(1, 3), r.randint(1, 3)
    if r.random() < 0.2:
        cg, og = 1, 1  # depthwise
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    x = In((r.randint(1, 3), groups * cg, r.randint(1, 10), r.randint(1, 10)))
    w = In((groups * og, cg, kh, kw))
    bias = In((groups * og,)) if r.random() < 0.5 else None
    return Case("conv2d", (x, w, bias), {"stride": rand_pair(r, 1, 3), "padding": rand_padding(r),
                                         "dilation": rand_pair(r, 1, 2), "groups": groups})


def _conv2d_backward(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        fwd = _conv2d(r)
        x, w = cast(In, fwd.inputs[0]), cast(In, fwd.inputs[1])
        dy = In(output_shape_of(fwd))
        if op == "conv2d_backward_input":
            return Case(op, (dy, w), dict(fwd.attrs, input_shape=x.shape))
        return Case(op, (x, dy), dict(fwd.attrs, weight_shape=w.shape))
    return make


def _renamed(case: Case, op: str) -> Case:
    """The same call of another op with the same signature (a fused op and its first part)."""
    return Case(op, case.inputs, case.attrs)


def _with_bounds(case: Case, r: random.Random) -> Case:
    """``case`` with random clip bounds (either may be None; min > max now and then)."""
    lo, hi = (None if r.random() < 0.2 else round(r.uniform(-2.0, 1.0), 3) for _ in range(2))
    if hi is not None and lo is not None and r.random() < 0.8:
        hi = lo + abs(hi)
    return Case(case.op, case.inputs, dict(case.attrs, min=lo, max=hi))


GRIDS: tuple[Callable[[], Iterator[Case]], ...] = (conv2d_grid, fused_grid, grad_conv_grid, empty_batch_conv_grid,
                                                   conv_transpose_grid)
"""The grid generators, each numbered from seed 0."""

SPECIAL: tuple[Callable[[], Iterator[Case]], ...] = (special_conv_grid, special_conv_transpose_grid)
"""Generators of special-value cases (NaN, infinities, signed zeros, overflow edges), numbered from seed 0."""

RANDOM: dict[str, Callable[[random.Random], Case]] = {
    'conv2d': _conv2d,
    'conv2d_bias_relu': lambda r: _renamed(_conv2d(r), "conv2d_bias_relu"),
    'conv2d_bias_clip': lambda r: _with_bounds(_renamed(_conv2d(r), "conv2d_bias_clip"), r),
    'conv2d_backward_input': _conv2d_backward("conv2d_backward_input"),
    'conv2d_backward_weight': _conv2d_backward("conv2d_backward_weight"),
    'conv_transpose2d': _conv_transpose2d,
}
"""Per op, a generator of one random case (rejection-sampled against the schema by the caller)."""
