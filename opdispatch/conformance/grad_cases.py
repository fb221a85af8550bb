"""Conformance grid of the backward ops (`opdispatch.ops.grad`).

Each case is built from a forward call: the upstream gradient ``dy`` gets the forward output's
shape, computed with the forward schema's own shape inference, so every case is a valid call.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from ..ops import OPS
from ..schema import TensorMeta
from .cases import PADDINGS, Case, In


def forward_shape(op: str, shapes: tuple[Optional[tuple[int, ...]], ...], attrs: dict[str, Any],
                  out: int = 0) -> tuple[int, ...]:
    """The shape of output ``out`` of forward op ``op`` on inputs of ``shapes`` (None: absent)."""
    schema = OPS[op]
    metas = [None if s is None else TensorMeta(tuple(s), np.dtype("float32")) for s in shapes]
    outs, _ = schema.infer(schema.name, metas, schema.normalize(attrs))
    return outs[out].shape


def _x(*shape: int) -> In:
    return In(tuple(shape))


def _pos(*shape: int) -> In:
    return In(tuple(shape), "uniform", 0.1, 2.0)


def conv_backward_cases(x: tuple, w: tuple, attrs: dict) -> Iterator[Case]:
    """Both conv2d gradients of ``conv2d(x, w, **attrs)``."""
    dy = In(forward_shape("conv2d", (x, w, None), attrs))
    yield Case("conv2d_backward_input", (dy, In(w)), dict(attrs, input_shape=x))
    yield Case("conv2d_backward_weight", (In(x), dy), dict(attrs, weight_shape=w))


def max_pool_backward_case(x: In, attrs: dict) -> Case:
    return Case("max_pool2d_backward", (x, In(forward_shape("max_pool2d", (x.shape,), attrs))), attrs)


def avg_pool_backward_case(x: tuple, attrs: dict) -> Case:
    return Case("avg_pool2d_backward", (In(forward_shape("avg_pool2d", (x,), attrs)),), dict(attrs, input_shape=x))


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


def grad_pool_grid() -> Iterator[Case]:
    x = (2, 3, 7, 6)
    for k in (2, 3, (3, 2)):
        for stride in (None, 1, 2):
            attrs = {"kernel_size": k, "stride": stride}
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


def grad_batch_norm_grid() -> Iterator[Case]:
    for shape in ((2, 3, 4, 5), (8, 4), (1, 2, 3, 3), (4, 1, 1, 1), (3, 2, 5)):
        c = shape[1]
        for training in (False, True):
            for weight in (None, _pos(c)):
                yield Case("batch_norm_backward", (_x(*shape), _x(*shape), _x(c), _pos(c), weight),
                           {"training": training})
    yield Case("batch_norm_backward", (_x(2, 3, 2, 2), _x(2, 3, 2, 2), _x(3), _pos(3), _x(3)), {"eps": 1e-3})
    yield Case("batch_norm_backward", (_x(2, 3, 2, 2), _x(2, 3, 2, 2), _x(3), _pos(3), _x(3)),
               {"training": True, "eps": 0.5})
    yield Case("batch_norm_backward", (_x(16, 8, 6, 6), _x(16, 8, 6, 6), _x(8), _pos(8), _pos(8)),
               {"training": True})


def grad_misc_grid() -> Iterator[Case]:
    for shape in ((), (7,), (2, 3, 4)):
        yield Case("relu_backward", (_x(*shape), _x(*shape)), {})
    yield Case("relu_backward", (_x(3, 4), In((3, 4), "array", values=tuple([0.0, -0.0, 1.0, -1.0] * 3))), {})
    for axis in (None, 0, 1, -1, (0, 2)):
        for keepdims in (False, True):
            attrs = {"axis": axis, "keepdims": keepdims}
            yield Case("max_backward", (_x(2, 3, 4), In(forward_shape("max", ((2, 3, 4),), attrs))), attrs)
    yield Case("max_backward", (_x(5), _x()), {})
    yield Case("max_backward", (_x(), _x()), {})
    yield Case("max_backward", (_x(3, 4), _x()), {"axis": (1, 0)})
    ties = In((3, 4), "array", values=(1, 5, 5, 2, 7, 7, 7, 7, 0, -1, 3, 3))
    for axis in (None, 0, 1):
        for keepdims in (False, True):
            attrs = {"axis": axis, "keepdims": keepdims}
            yield Case("max_backward", (ties, In(forward_shape("max", ((3, 4),), attrs))), attrs)
    for n, c in ((4, 5), (1, 1), (16, 10), (3, 2)):
        yield Case("softmax_cross_entropy_backward", (_x(n, c), In((n,), "labels", high=c), _x()), {})
    yield Case("softmax_cross_entropy_backward", (In((4, 3), "uniform", -60.0, 60.0), In((4,), "labels", high=3),
                                                  _x()), {})
    for src, dst in (((), (2, 3)), ((3,), (2, 3)), ((2, 1), (2, 4)), ((1, 3, 1), (2, 3, 4)), ((2, 3), (2, 3)),
                     ((1,), (0,)), ((4, 1, 1), (2, 4, 3, 5)), ((5,), (5,))):
        yield Case("broadcast_to", (_x(*src),), {"shape": dst})


def grad_grid() -> Iterator[Case]:
    """Every grid case of the backward ops."""
    yield from grad_conv_grid()
    yield from grad_pool_grid()
    yield from grad_batch_norm_grid()
    yield from grad_misc_grid()
