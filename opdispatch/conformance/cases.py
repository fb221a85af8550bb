"""Conformance cases: a deterministic grid per op covering every attribute dimension of API.md,
plus seeded random cases. A case is data only (op, input recipes, user attributes), so it prints
as a one-line reproduction and its inputs are rebuilt identically for any dtype."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import numpy as np


@dataclass(frozen=True)
class In:
    """How to make one input: ``kind`` 'normal' (standard normal), 'uniform' (in [low, high]),
    'labels' (ints in [0, high)), or 'array' (the given ``values``)."""

    shape: tuple[int, ...]
    kind: str = "normal"
    low: float = 0.0
    high: float = 1.0
    values: Optional[tuple] = None

    def make(self, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
        """The input's values for ``dtype`` (labels are int64 whatever the dtype)."""
        if self.kind == "labels":
            return rng.integers(0, int(self.high), self.shape).astype(np.int64)
        if self.kind == "array":
            with np.errstate(over="ignore"):  # literal data beyond the dtype's range becomes inf, as a cast does
                return np.asarray(self.values, dtype=np.float64).reshape(self.shape).astype(dtype)
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, self.shape).astype(dtype)
        return rng.standard_normal(self.shape).astype(dtype)

    def describe(self) -> str:
        dims = "x".join(map(str, self.shape)) or "scalar"
        return dims if self.kind == "normal" else f"{self.kind}({dims})"


@dataclass(frozen=True)
class Case:
    """One call of one op: input recipes (None for an absent optional input) and user attributes."""

    op: str
    inputs: tuple[Optional[In], ...]
    attrs: dict = field(default_factory=dict, hash=False)
    seed: int = 0
    source: str = "grid"

    @property
    def name(self) -> str:
        if self.source.startswith("onnx:"):
            return f"{self.source}/{self.seed}:{self.op}"
        ins = ",".join("-" if i is None else i.describe() for i in self.inputs)
        att = ",".join(f"{k}={v!r}" for k, v in sorted(self.attrs.items()))
        return f"{self.op}({ins}{';' + att if att else ''})#{self.seed}"

    def make_inputs(self, dtype: Any) -> list[Optional[np.ndarray]]:
        """Deterministic inputs for ``dtype``: the same case and dtype always give the same arrays."""
        rng = np.random.default_rng(self.seed)
        return [None if i is None else i.make(rng, np.dtype(dtype)) for i in self.inputs]

    def to_json(self) -> str:
        """A one-line JSON form, accepted by ``opdispatch conformance --case``."""
        if any(i is not None and i.kind == "array" for i in self.inputs):
            raise ValueError(f"{self.name}: a case with literal input values has no one-line form")
        return json.dumps({"op": self.op, "seed": self.seed, "source": self.source, "attrs": self.attrs,
                           "inputs": [None if i is None else {"shape": list(i.shape), "kind": i.kind, "low": i.low,
                                                              "high": i.high} for i in self.inputs]})


def _x(*shape: int) -> In:
    return In(tuple(shape))


def _pos(*shape: int) -> In:
    return In(tuple(shape), "uniform", 0.1, 2.0)


PADDINGS = [0, 1, (1, 2), ((0, 1), (2, 0)), "VALID", "SAME"]


def conv2d_grid() -> Iterator[Case]:
    for padding in PADDINGS:
        for stride in (1, 2, (2, 1)):
            yield Case("conv2d", (_x(2, 3, 7, 6), _x(4, 3, 3, 2), None), {"stride": stride, "padding": padding})
    # SAME with even and odd total padding; dilation; groups incl. depthwise; bias; edge sizes
    yield Case("conv2d", (_x(1, 2, 8, 8), _x(3, 2, 4, 4), _x(3)), {"padding": "SAME"})          # odd total (3)
    yield Case("conv2d", (_x(1, 2, 8, 8), _x(3, 2, 3, 3), _x(3)), {"padding": "SAME"})          # even total (2)
    yield Case("conv2d", (_x(1, 2, 9, 9), _x(3, 2, 3, 3), None), {"padding": "SAME", "stride": 2})
    yield Case("conv2d", (_x(2, 2, 9, 8), _x(2, 2, 3, 3), None), {"padding": "SAME", "dilation": 2})
    yield Case("conv2d", (_x(2, 2, 9, 8), _x(2, 2, 3, 2), _x(2)), {"dilation": (2, 3), "padding": 1})
    yield Case("conv2d", (_x(2, 4, 6, 6), _x(6, 2, 3, 3), _x(6)), {"groups": 2, "padding": 1})
    yield Case("conv2d", (_x(2, 4, 6, 6), _x(4, 1, 3, 3), None), {"groups": 4, "padding": "SAME"})  # depthwise
    yield Case("conv2d", (_x(1, 3, 5, 5), _x(6, 1, 3, 3), _x(6)), {"groups": 3, "stride": 2})   # depth multiplier
    yield Case("conv2d", (_x(1, 1, 1, 1), _x(1, 1, 1, 1), None), {})                           # 1x1 image
    yield Case("conv2d", (_x(1, 1, 1, 1), _x(2, 1, 3, 3), _x(2)), {"padding": "SAME"})
    yield Case("conv2d", (_x(3, 5, 4, 4), _x(2, 5, 1, 1), _x(2)), {})                          # pointwise
    yield Case("conv2d", (_x(2, 3, 5, 7), _x(2, 3, 5, 7), None), {})                           # kernel = input
    yield Case("conv2d", (_x(1, 2, 10, 3), _x(1, 2, 1, 3), None), {"stride": (3, 1)})          # 1xK, non-square


def fused_grid() -> Iterator[Case]:
    """conv2d_bias_relu on every conv2d grid call."""
    for case in conv2d_grid():
        yield Case("conv2d_bias_relu", case.inputs, case.attrs)


def pool_grid(op: str) -> Iterator[Case]:
    x = _x(2, 3, 7, 6)
    for k in (2, 3, (3, 2)):
        for stride in (None, 1, 2):
            yield Case(op, (x,), {"kernel_size": k, "stride": stride})
    for padding in (1, (1, 0), ((0, 1), (1, 0)), "VALID", "SAME"):
        yield Case(op, (x,), {"kernel_size": 3, "stride": 2, "padding": padding})
    for ceil_mode in (False, True):
        yield Case(op, (_x(1, 2, 6, 6),), {"kernel_size": 3, "stride": 2, "ceil_mode": ceil_mode})
        yield Case(op, (_x(1, 2, 7, 8),), {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": ceil_mode})
        # PyTorch's rule: a last window that would start in the trailing padding is dropped
        yield Case(op, (_x(1, 1, 5, 5),), {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": ceil_mode})
    yield Case(op, (_x(1, 1, 1, 1),), {"kernel_size": 1})
    yield Case(op, (_x(1, 1, 2, 2),), {"kernel_size": 2, "padding": "SAME"})
    yield Case(op, (_x(1, 1, 9, 9),), {"kernel_size": 3, "stride": 3, "padding": "SAME"})
    if op == "max_pool2d":
        yield Case(op, (x,), {"kernel_size": 2, "dilation": 2})
        yield Case(op, (x,), {"kernel_size": 3, "stride": 1, "dilation": (2, 1), "padding": 1})
        yield Case(op, (_x(1, 1, 8, 8),), {"kernel_size": 3, "dilation": 2, "ceil_mode": True, "stride": 2})
        yield Case(op, (In((1, 2, 4, 4), "uniform", -5.0, -1.0),), {"kernel_size": 3, "padding": 1, "stride": 1})
    else:
        for cip in (True, False):
            yield Case(op, (x,), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": cip})
            yield Case(op, (x,), {"kernel_size": 2, "padding": "SAME", "count_include_pad": cip})
            yield Case(op, (_x(1, 2, 7, 8),), {"kernel_size": 3, "stride": 2, "padding": ((1, 0), (0, 2)),
                                               "ceil_mode": True, "count_include_pad": cip})


def batch_norm_grid() -> Iterator[Case]:
    for shape in ((2, 3, 4, 5), (8, 4), (1, 2, 3, 3), (4, 1, 1, 1)):
        c = shape[1]
        stats = (_x(c), _pos(c))
        for affine in (False, True):
            wb = (_pos(c), _x(c)) if affine else (None, None)
            yield Case("batch_norm", (_x(*shape),) + stats + wb, {})
            yield Case("batch_norm", (_x(*shape),) + stats + wb, {"training": True, "momentum": 0.3})
    yield Case("batch_norm", (_x(2, 3, 2, 2), _x(3), _pos(3), _pos(3), None), {"eps": 1e-3})
    yield Case("batch_norm", (_x(2, 3, 2, 2), _x(3), _pos(3), None, _x(3)), {"training": True, "momentum": 0.0})
    yield Case("batch_norm", (_x(2, 3, 2, 2), _x(3), _pos(3), None, None), {"training": True, "momentum": 1.0})


def matmul_grid() -> Iterator[Case]:
    for a, b in [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5)), ((1, 1), (1, 1)), ((5,), (2, 5, 3)),
                 ((16, 64), (64, 8))]:
        yield Case("matmul", (_x(*a), _x(*b)), {})


def elementwise_grid() -> Iterator[Case]:
    for op in ("relu", "sigmoid", "tanh", "exp", "neg"):
        for shape in ((), (7,), (2, 3, 4)):
            yield Case(op, (_x(*shape),), {})
    yield Case("sigmoid", (In((50,), "uniform", -60.0, 60.0),), {})
    for op in ("log", "sqrt"):
        for shape in ((), (7,), (2, 3, 4)):
            yield Case(op, (_pos(*shape),), {})
    for op in ("add", "sub", "mul", "div"):
        second = _pos if op == "div" else _x
        for a, b in [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((3, 1), (1, 4))]:
            yield Case(op, (_x(*a), second(*b)), {})


def reduce_grid() -> Iterator[Case]:
    for op in ("sum", "mean", "max"):
        for axis in (None, 0, 1, -1, (0, 2)):
            for keepdims in (False, True):
                yield Case(op, (_x(2, 3, 4),), {"axis": axis, "keepdims": keepdims})
        yield Case(op, (_x(5),), {})
        yield Case(op, (_x(),), {})
        yield Case(op, (_x(3, 4),), {"axis": (1, 0)})


def layout_grid() -> Iterator[Case]:
    yield Case("reshape", (_x(2, 3, 4),), {"shape": (4, 6)})
    yield Case("reshape", (_x(2, 3, 4),), {"shape": (-1, 2)})
    yield Case("reshape", (_x(6),), {"shape": (1, 6, 1)})
    yield Case("reshape", (_x(1),), {"shape": ()})
    for axes in (None, (1, 0, 2), (2, 0, 1)):
        yield Case("transpose", (_x(2, 3, 4),), {"axes": axes})
    yield Case("transpose", (_x(5),), {})
    for start in (0, 1, 2, -1):
        yield Case("flatten", (_x(2, 3, 4),), {"start_axis": start})


def nn_grid() -> Iterator[Case]:
    for op in ("softmax", "log_softmax"):
        for shape, axis in (((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1), ((6,), 0), ((3, 1), 1)):
            yield Case(op, (_x(*shape),), {"axis": axis})
        yield Case(op, (In((2, 6), "uniform", -120.0, 120.0),), {})  # large logits: exp overflows unless max-shifted
    for n, c in ((4, 5), (1, 1), (16, 10), (3, 2)):
        yield Case("softmax_cross_entropy", (_x(n, c), In((n,), "labels", high=c)), {})
    yield Case("softmax_cross_entropy", (In((4, 3), "uniform", -60.0, 60.0), In((4,), "labels", high=3)), {})


def grid_cases() -> list[Case]:
    """The deterministic grid over every op, each case numbered by its own seed."""
    gens = [conv2d_grid(), pool_grid("max_pool2d"), pool_grid("avg_pool2d"), batch_norm_grid(), matmul_grid(),
            elementwise_grid(), reduce_grid(), layout_grid(), nn_grid(), fused_grid()]
    cases = []
    for gen in gens:
        for i, case in enumerate(gen):
            cases.append(Case(case.op, case.inputs, case.attrs, seed=i, source="grid"))
    from .grad_cases import grad_grid  # the backward ops (imported late: it builds on this module)

    for i, case in enumerate(grad_grid()):
        cases.append(Case(case.op, case.inputs, case.attrs, seed=i, source="grid"))
    return cases


def case_from_json(text: str) -> Case:
    """The inverse of `Case.to_json` (used by ``--case`` reproductions)."""
    data = json.loads(text)
    inputs = tuple(None if i is None else In(tuple(i["shape"]), i.get("kind", "normal"), i.get("low", 0.0),
                                             i.get("high", 1.0)) for i in data["inputs"])
    attrs = {k: _tuples(v) for k, v in data.get("attrs", {}).items()}
    return Case(data["op"], inputs, attrs, seed=int(data.get("seed", 0)), source=data.get("source", "repro"))


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the case was written with."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
