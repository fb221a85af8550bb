"""What a conformance case is: data only (op, input recipes, user attributes), so it prints as a
one-line reproduction and its inputs are rebuilt identically for any dtype; and the helpers the
family case modules build their grids and random generators with."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from opdispatch import OpDispatchError, TensorMeta
from opdispatch.ops import OPS


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


def normal(*shape: int) -> In:
    """A standard-normal input of ``shape``."""
    return In(tuple(shape))


def positive(*shape: int) -> In:
    """A uniform input in [0.1, 2.0] of ``shape`` (variances, divisors)."""
    return In(tuple(shape), "uniform", 0.1, 2.0)


PADDINGS = [0, 1, (1, 2), ((0, 1), (2, 0)), "VALID", "SAME"]


def rand_padding(r: random.Random) -> Any:
    """A random padding in one of the accepted forms."""
    form = r.randrange(5)
    if form == 0:
        return r.randrange(3)
    if form == 1:
        return (r.randrange(3), r.randrange(3))
    if form == 2:
        return ((r.randrange(3), r.randrange(3)), (r.randrange(3), r.randrange(3)))
    return r.choice(["VALID", "SAME"])


def rand_pair(r: random.Random, low: int, high: int) -> Any:
    """An int or an (h, w) pair of ints in [low, high]."""
    return r.randint(low, high) if r.random() < 0.5 else (r.randint(low, high), r.randint(low, high))


def rand_shape(r: random.Random, max_rank: int = 4) -> tuple[int, ...]:
    """A shape of rank <= ``max_rank`` with dimensions in [1, 5]."""
    return tuple(r.randint(1, 5) for _ in range(r.randint(0, max_rank)))


def _metas(case: "Case") -> list:
    return [None if i is None else TensorMeta(i.shape, np.dtype("int64" if i.kind == "labels" else "float32"))
            for i in case.inputs]


def forward_shape(op: str, shapes: tuple[Optional[tuple[int, ...]], ...], attrs: dict[str, Any],
                  out: int = 0) -> tuple[int, ...]:
    """The shape of output ``out`` of op ``op`` on float inputs of ``shapes`` (None: absent)."""
    schema = OPS[op]
    metas = [None if s is None else TensorMeta(tuple(s), np.dtype("float32")) for s in shapes]
    outs, _ = schema.infer(schema.name, metas, schema.normalize(attrs))
    return outs[out].shape


def output_shape_of(case: "Case", out: int = 0) -> tuple[int, ...]:
    """Output ``out``'s shape of ``case``, or () when the case is invalid (a case built on it, such as
    a backward op's ``dy``, is then rejected too: a () dy never fits)."""
    schema = OPS[case.op]
    try:
        outs, _ = schema.infer(schema.name, _metas(case), schema.normalize(case.attrs))
    except OpDispatchError:
        return ()
    return outs[out].shape


def is_valid(case: "Case") -> bool:
    """True when the op's schema accepts the case (shapes and attributes)."""
    schema = OPS[case.op]
    try:
        schema.infer(schema.name, _metas(case), schema.normalize(case.attrs))
    except OpDispatchError:
        return False
    return True


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
