"""Seeded random conformance cases: random attributes and sizes, kept only when the op's own
schema accepts them (rejection sampling), so every generated case is a valid call."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

from ..errors import OpDispatchError
from ..ops import OPS
from ..schema import TensorMeta
from .cases import Case, In

import numpy as np


def _padding(r: random.Random) -> Any:
    form = r.randrange(5)
    if form == 0:
        return r.randrange(3)
    if form == 1:
        return (r.randrange(3), r.randrange(3))
    if form == 2:
        return ((r.randrange(3), r.randrange(3)), (r.randrange(3), r.randrange(3)))
    return r.choice(["VALID", "SAME"])


def _pair(r: random.Random, low: int, high: int) -> Any:
    return r.randint(low, high) if r.random() < 0.5 else (r.randint(low, high), r.randint(low, high))


def _conv2d(r: random.Random) -> Case:
    groups = r.choice([1, 1, 2, 3])
    cg, og = r.randint(1, 3), r.randint(1, 3)
    if r.random() < 0.2:
        cg, og = 1, 1  # depthwise
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    x = In((r.randint(1, 3), groups * cg, r.randint(1, 10), r.randint(1, 10)))
    w = In((groups * og, cg, kh, kw))
    bias = In((groups * og,)) if r.random() < 0.5 else None
    return Case("conv2d", (x, w, bias), {"stride": _pair(r, 1, 3), "padding": _padding(r),
                                         "dilation": _pair(r, 1, 2), "groups": groups})


def _pool(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        attrs = {"kernel_size": _pair(r, 1, 4), "stride": r.choice([None, _pair(r, 1, 3)]),
                 "padding": _padding(r), "ceil_mode": r.random() < 0.5}
        if op == "max_pool2d":
            attrs["dilation"] = _pair(r, 1, 2)
        else:
            attrs["count_include_pad"] = r.random() < 0.5
        return Case(op, (In((r.randint(1, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9))),), attrs)
    return make


def _batch_norm(r: random.Random) -> Case:
    c = r.randint(1, 4)
    shape = (r.randint(1, 4), c) + tuple(r.randint(1, 4) for _ in range(r.choice([0, 1, 2])))
    stat_var = In((c,), "uniform", 0.1, 2.0)
    affine = r.random() < 0.5
    return Case("batch_norm", (In(shape), In((c,)), stat_var, In((c,), "uniform", 0.1, 2.0) if affine else None,
                               In((c,)) if affine else None),
                {"training": r.random() < 0.5, "momentum": round(r.uniform(0, 1), 3),
                 "eps": r.choice([1e-5, 1e-3])})


def _matmul(r: random.Random) -> Case:
    m, k, n = r.randint(1, 6), r.randint(1, 8), r.randint(1, 6)
    batch = tuple(r.randint(1, 3) for _ in range(r.randint(0, 2)))
    a = r.choice([(k,), batch + (m, k)])
    b = r.choice([(k,), tuple(1 if r.random() < 0.3 else d for d in batch) + (k, n)])
    return Case("matmul", (In(a), In(b)), {})


def _shape(r: random.Random, max_rank: int = 4) -> tuple[int, ...]:
    return tuple(r.randint(1, 5) for _ in range(r.randint(0, max_rank)))


def _unary(op: str) -> Callable[[random.Random], Case]:
    positive = op in ("log", "sqrt")
    return lambda r: Case(op, (In(_shape(r), "uniform", 0.05, 4.0) if positive else In(_shape(r)),), {})


def _binary(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        a = _shape(r)
        b = tuple(1 if r.random() < 0.3 else d for d in a[r.randint(0, len(a)):])
        if r.random() < 0.5:
            a, b = b, a
        return Case(op, (In(a), In(b, "uniform", 0.5, 2.0) if op == "div" else In(b)), {})
    return make


def _reduce(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        shape = _shape(r)
        axis: Any = None
        if shape and r.random() < 0.7:
            axis = tuple(sorted(r.sample(range(-len(shape), 0), r.randint(1, len(shape)))))
            axis = axis[0] if len(axis) == 1 and r.random() < 0.5 else axis
        return Case(op, (In(shape),), {"axis": axis, "keepdims": r.random() < 0.5})
    return make


def _reshape(r: random.Random) -> Case:
    shape = _shape(r)
    new = list(shape)
    r.shuffle(new)
    if new and r.random() < 0.5:
        new[r.randrange(len(new))] = -1
    return Case("reshape", (In(shape),), {"shape": tuple(new)})


def _transpose(r: random.Random) -> Case:
    shape = _shape(r)
    axes = list(range(len(shape)))
    r.shuffle(axes)
    return Case("transpose", (In(shape),), {"axes": tuple(axes) if r.random() < 0.8 else None})


def _flatten(r: random.Random) -> Case:
    shape = _shape(r) or (3,)
    return Case("flatten", (In(shape),), {"start_axis": r.randint(-len(shape), len(shape) - 1)})


def _softmax(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        shape = _shape(r) or (4,)
        return Case(op, (In(shape, "uniform", -10.0, 10.0),), {"axis": r.randint(-len(shape), len(shape) - 1)})
    return make


def _xent(r: random.Random) -> Case:
    n, c = r.randint(1, 8), r.randint(1, 6)
    return Case("softmax_cross_entropy", (In((n, c), "uniform", -5.0, 5.0), In((n,), "labels", high=c)), {})


def _forward_shape(case: Case, out: int = 0) -> tuple[int, ...]:
    """Output ``out``'s shape of the forward ``case``, or () when the case is invalid (the backward case
    built on it is then rejected too: a () dy never fits)."""
    schema = OPS[case.op]
    metas = [None if i is None else TensorMeta(i.shape, np.dtype("int64" if i.kind == "labels" else "float32"))
             for i in case.inputs]
    try:
        outs, _ = schema.infer(schema.name, metas, schema.normalize(case.attrs))
    except OpDispatchError:
        return ()
    return outs[out].shape


def _conv2d_backward(op: str) -> Callable[[random.Random], Case]:
    def make(r: random.Random) -> Case:
        fwd = _conv2d(r)
        x, w, _ = fwd.inputs
        dy = In(_forward_shape(fwd))
        if op == "conv2d_backward_input":
            return Case(op, (dy, w), dict(fwd.attrs, input_shape=x.shape))
        return Case(op, (x, dy), dict(fwd.attrs, weight_shape=w.shape))
    return make


def _max_pool2d_backward(r: random.Random) -> Case:
    fwd = _pool("max_pool2d")(r)
    return Case("max_pool2d_backward", (fwd.inputs[0], In(_forward_shape(fwd))), fwd.attrs)


def _avg_pool2d_backward(r: random.Random) -> Case:
    fwd = _pool("avg_pool2d")(r)
    return Case("avg_pool2d_backward", (In(_forward_shape(fwd)),), dict(fwd.attrs, input_shape=fwd.inputs[0].shape))


def _batch_norm_backward(r: random.Random) -> Case:
    fwd = _batch_norm(r)
    x, rm, rv, weight, _ = fwd.inputs
    return Case("batch_norm_backward", (x, In(x.shape), rm, rv, weight),
                {"training": fwd.attrs["training"], "eps": fwd.attrs["eps"]})


def _relu_backward(r: random.Random) -> Case:
    shape = _shape(r)
    return Case("relu_backward", (In(shape), In(shape)), {})


def _max_backward(r: random.Random) -> Case:
    fwd = _reduce("max")(r)
    return Case("max_backward", (fwd.inputs[0], In(_forward_shape(fwd))), fwd.attrs)


def _xent_backward(r: random.Random) -> Case:
    fwd = _xent(r)
    return Case("softmax_cross_entropy_backward", fwd.inputs + (In(()),), {})


def _broadcast_to(r: random.Random) -> Case:
    dst = _shape(r)
    src = tuple(1 if r.random() < 0.4 else d for d in dst[r.randint(0, len(dst)):])
    return Case("broadcast_to", (In(src),), {"shape": dst})


def _renamed(case: Case, op: str) -> Case:
    """The same call of another op with the same signature (a fused op and its first part)."""
    return Case(op, case.inputs, case.attrs)


GENERATORS: dict[str, Callable[[random.Random], Case]] = {
    "conv2d": _conv2d, "max_pool2d": _pool("max_pool2d"), "avg_pool2d": _pool("avg_pool2d"),
    "batch_norm": _batch_norm, "matmul": _matmul, "reshape": _reshape, "transpose": _transpose,
    "flatten": _flatten, "softmax": _softmax("softmax"), "log_softmax": _softmax("log_softmax"),
    "softmax_cross_entropy": _xent,
    **{op: _unary(op) for op in ("relu", "sigmoid", "tanh", "exp", "log", "sqrt", "neg")},
    **{op: _binary(op) for op in ("add", "sub", "mul", "div")},
    **{op: _reduce(op) for op in ("sum", "mean", "max")},
    "conv2d_backward_input": _conv2d_backward("conv2d_backward_input"),
    "conv2d_backward_weight": _conv2d_backward("conv2d_backward_weight"),
    "max_pool2d_backward": _max_pool2d_backward, "avg_pool2d_backward": _avg_pool2d_backward,
    "batch_norm_backward": _batch_norm_backward, "relu_backward": _relu_backward, "max_backward": _max_backward,
    "softmax_cross_entropy_backward": _xent_backward, "broadcast_to": _broadcast_to,
    "conv2d_bias_relu": lambda r: _renamed(_conv2d(r), "conv2d_bias_relu"),
}


def is_valid(case: Case) -> bool:
    """True when the op's schema accepts the case (shapes and attributes)."""
    schema = OPS[case.op]
    metas = [None if i is None else TensorMeta(i.shape, np.dtype("int64" if i.kind == "labels" else "float32"))
             for i in case.inputs]
    try:
        schema.infer(schema.name, metas, schema.normalize(case.attrs))
    except OpDispatchError:
        return False
    return True


def random_cases(op: str, count: int, seed: int = 0) -> Iterator[Case]:
    """``count`` valid random cases of ``op``; the same (op, count, seed) always gives the same cases."""
    r = random.Random(f"{op}:{seed}")
    made = 0
    for attempt in range(count * 200):
        case = GENERATORS[op](r)
        if is_valid(case):
            yield Case(case.op, case.inputs, case.attrs, seed=seed * 100_000 + made, source="random")
            made += 1
            if made == count:
                return
