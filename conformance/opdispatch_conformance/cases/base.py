"""What a conformance case is: data only (op, input recipes, user attributes), so it prints as a
one-line reproduction and its inputs are rebuilt identically for any dtype; and the helpers the
family case modules build their grids and random generators with."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np
from opdispatch import OpDispatchError, TensorMeta
from opdispatch.ops import OPS


NAN, INF = float("nan"), float("inf")
NONFINITE: tuple[float, ...] = (NAN, INF, -INF, -0.0, 0.0)
"""NaN, both infinities and both zeros."""
EDGES: tuple[float, ...] = (100.0, -100.0, 1e4, -1e4, 88.72, -88.72, 88.73, -88.73, -103.98, 709.7, -709.7,
                            710.0, -745.2)
"""Values at the overflow edges of exp and the functions built on it (sigmoid, tanh, softmax, log_softmax,
the cross-entropy): exp overflows float32 above 88.7228 and float64 above 709.78, underflows float32's
subnormals below -103.97 and float64's below -745.13; 100 and 1e4 overflow exp in float32 (1e4 in
float64 too) and sigmoid's or softmax's naive forms with them."""
SPECIALS: tuple[float, ...] = NONFINITE + EDGES
"""The default pool of an ``In(kind="special")``."""


@dataclass(frozen=True, eq=False)
class In:
    """How to make one input: ``kind`` 'normal' (standard normal), 'uniform' (in [low, high], ranges as
    wide as the dtype allows), 'labels' (ints in [0, high)), 'array' (the given ``values``), or
    'special': uniform values in [low, high] of which a seeded quarter (at least one of each) is
    replaced by the pool ``values`` (default `SPECIALS`: NaN, +-inf, +-0.0 and exp's overflow
    edges), cycling through the pool; values beyond the dtype's range become +-inf, as a cast does.
    ``dtype`` fixes the input's dtype whatever the case's (e.g. "int32", "int64", "bool"): integers are
    drawn in [low, high] (default [-3, 3]: ties and equal operands are common), bools fair coin
    flips, and an 'array' input holds its ``values`` in that dtype."""

    shape: tuple[int, ...]
    kind: str = "normal"
    low: float = 0.0
    high: float = 1.0
    values: Optional[tuple] = None
    dtype: str = ""

    def make(self, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
        """The input's values for ``dtype`` (labels are int64, and an input with its own ``dtype`` has
        that, whatever the dtype). In a run of an int or bool ``dtype`` the other inputs are drawn as an
        input of that fixed dtype is (see `applies` for the cases such a run takes)."""
        fixed = np.dtype(self.dtype) if self.dtype else None
        if fixed is None and self.kind != "labels" and np.dtype(dtype).kind in "iub":
            fixed = np.dtype(dtype)
        if fixed is not None:
            if self.kind == "array":
                return np.asarray(self.values).reshape(self.shape).astype(fixed)
            if fixed == np.bool_:
                return rng.random(self.shape) < 0.5
            low, high = (self.low, self.high) if self.kind == "uniform" else (-3, 3)
            return rng.integers(int(low), int(high), self.shape, endpoint=True).astype(fixed)
        if self.kind == "labels":
            return rng.integers(0, int(self.high), self.shape).astype(np.int64)
        if self.kind == "array":
            with np.errstate(over="ignore"):  # literal data beyond the dtype's range becomes inf, as a cast does
                return np.asarray(self.values, dtype=np.float64).reshape(self.shape).astype(dtype)
        if self.kind == "uniform":
            with np.errstate(over="ignore"):
                return rng.uniform(self.low, self.high, self.shape).astype(dtype)
        if self.kind == "special":
            out = rng.uniform(self.low, self.high, self.shape)
            pool = np.asarray(SPECIALS if self.values is None else self.values, dtype=np.float64)
            flat = out.reshape(-1)
            if flat.size and pool.size:
                count = min(flat.size, max(pool.size, -(-flat.size // 4)))
                flat[rng.permutation(flat.size)[:count]] = np.resize(pool, count)
            with np.errstate(over="ignore"):
                return out.astype(dtype)
        return rng.standard_normal(self.shape).astype(dtype)

    def describe(self) -> str:
        dims = "x".join(map(str, self.shape)) or "scalar"
        if self.dtype:
            return f"{self.dtype}({dims}{'' if self.kind != 'uniform' else f';{self.low:g}..{self.high:g}'})" \
                if self.kind != "array" else f"{self.dtype}-array({dims})"
        if self.kind == "special":
            tail = "" if self.values is None else ";" + ",".join(_short(v) for v in self.values)
            span = "" if (self.low, self.high) == (-3.0, 3.0) else f";{_short(self.low)}..{_short(self.high)}"
            return f"special({dims}{span}{tail})"
        if self.kind == "uniform" and (abs(self.low) >= 10 or abs(self.high) >= 10):
            return f"uniform({dims};{_short(self.low)}..{_short(self.high)})"
        return dims if self.kind == "normal" else f"{self.kind}({dims})"

    def key(self) -> tuple:
        """What equality and hashing compare (the pool values bit for bit)."""
        values = None if self.values is None else np.asarray(self.values, dtype=np.float64).tobytes()
        return (self.shape, self.kind, self.low, self.high, values, self.dtype)

    def __eq__(self, other: object) -> bool:  # bitwise on the values: a NaN in a pool equals itself
        return isinstance(other, In) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def to_dict(self) -> dict:
        """The JSON form of the recipe (see `Case.to_json`); NaN and infinities as strings."""
        out = {"shape": list(self.shape), "kind": self.kind, "low": self.low, "high": self.high}
        if self.kind == "special" and self.values is not None:
            out["values"] = [_json_float(v) for v in self.values]
        if self.dtype:
            out["dtype"] = self.dtype
        return out

    @staticmethod
    def from_dict(data: dict) -> "In":
        values = data.get("values")
        return In(tuple(data["shape"]), data.get("kind", "normal"), float(data.get("low", 0.0)),
                  float(data.get("high", 1.0)), None if values is None else tuple(float(v) for v in values),
                  str(data.get("dtype", "")))


def _short(v: float) -> str:
    """A compact spelling of a pool value for case names (-0.0 keeps its sign)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    return f"{v:g}"


def _json_float(v: float) -> Any:
    """A float for strict JSON: NaN and the infinities as the strings float() reads back."""
    return repr(float(v)) if not math.isfinite(v) else float(v)


LAYOUTS = ("contiguous", "strided", "reversed", "transposed")
"""How a case hands its inputs to ``od.tensor``: C-contiguous arrays, or NumPy views with the same
values -- every other element of a larger buffer along the last axis (``strided``, the gaps hold
NaN, or -7 for integers), a negative-stride view of a reversed copy (``reversed``), or the transpose
of a transposed copy, column-major (``transposed``)."""


def as_layout(a: Optional[np.ndarray], layout: str) -> Optional[np.ndarray]:
    """``a``'s values in memory layout ``layout`` (see `LAYOUTS`); 0-d arrays stay as they are."""
    if a is None or layout == "contiguous" or a.ndim == 0:
        return a
    if layout == "strided":
        fill = np.nan if a.dtype.kind == "f" else -7
        big = np.full(a.shape[:-1] + (2 * a.shape[-1] + 1,), fill, dtype=a.dtype)
        big[..., 1::2] = a  # starts one element in: the view's first element is not the buffer's
        return big[..., 1::2]
    if layout == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class Case:
    """One call of one op: input recipes (None for an absent optional input) and user attributes."""

    op: str
    inputs: tuple[Optional[In], ...]
    attrs: dict = field(default_factory=dict, hash=False)
    seed: int = 0
    source: str = "grid"
    layout: str = "contiguous"  # how the inputs reach od.tensor: see `LAYOUTS`

    @property
    def name(self) -> str:
        if self.source.startswith("onnx:"):
            return f"{self.source}/{self.seed}:{self.op}"
        ins = ",".join("-" if i is None else i.describe() for i in self.inputs)
        att = ",".join(f"{k}={v!r}" for k, v in sorted(self.attrs.items()))
        view = "" if self.layout == "contiguous" else f"@{self.layout}"
        return f"{self.op}({ins}{';' + att if att else ''})#{self.seed}{view}"

    def make_inputs(self, dtype: Any) -> list[Optional[np.ndarray]]:
        """Deterministic inputs for ``dtype``: the same case and dtype always give the same arrays
        (C-contiguous, whatever the layout)."""
        rng = np.random.default_rng(self.seed)
        return [None if i is None else i.make(rng, np.dtype(dtype)) for i in self.inputs]

    def host_inputs(self, arrays: list[Optional[np.ndarray]]) -> list[Optional[np.ndarray]]:
        """``arrays`` (from `make_inputs`) as this case passes them to ``od.tensor``: in its `layout`."""
        return [as_layout(a, self.layout) for a in arrays]

    def with_layout(self, layout: str) -> "Case":
        """The same call with its inputs passed in another memory layout."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
        return replace(self, layout=layout)

    def to_json(self) -> str:
        """A one-line JSON form, accepted by ``opdispatch conformance --case``."""
        if any(i is not None and i.kind == "array" for i in self.inputs):
            raise ValueError(f"{self.name}: a case with literal input values has no one-line form")
        data = {"op": self.op, "seed": self.seed, "source": self.source, "attrs": self.attrs,
                "inputs": [None if i is None else i.to_dict() for i in self.inputs]}
        if self.layout != "contiguous":
            data["layout"] = self.layout
        return json.dumps(data)


def normal(*shape: int) -> In:
    """A standard-normal input of ``shape``."""
    return In(tuple(shape))


def positive(*shape: int) -> In:
    """A uniform input in [0.1, 2.0] of ``shape`` (variances, divisors)."""
    return In(tuple(shape), "uniform", 0.1, 2.0)


def special(*shape: int, pool: Optional[tuple] = None, low: float = -3.0, high: float = 3.0) -> In:
    """Uniform values in [low, high] of ``shape`` mixed with a seeded quarter of special values from
    ``pool`` (default `SPECIALS`: NaN, +-inf, +-0.0, exp's overflow edges)."""
    return In(tuple(shape), "special", low, high, None if pool is None else tuple(float(v) for v in pool))


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


def _metas(case: "Case", dtype: str = "float32") -> list:
    return [None if i is None else
            TensorMeta(i.shape, np.dtype(i.dtype or ("int64" if i.kind == "labels" else dtype)))
            for i in case.inputs]


NON_FLOAT_DTYPES = ("int32", "int64", "bool")
"""The dtypes a conformance run may take besides the floats (``--dtypes int32``): the cases of the ops
that take int or bool values (comparisons, where, argmax/argmin, max/min, the layout ops, cast,
gather ...), compared exactly."""


def applies(case: "Case", dtype: str) -> bool:
    """Whether ``case`` runs in ``dtype``: always in a float dtype; in int32, int64 or bool when some
    input takes the run's dtype (not all have their own), the op takes that dtype (its schema accepts
    the case's inputs in it) and the inputs' values exist in it (no NaN or infinity pools, no
    fractional literal values; 0/1 ones for bool)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return True
    if all(i is None or i.dtype or i.kind == "labels" for i in case.inputs):
        return False  # the same call as in every other run
    for i in case.inputs:
        if i is None or i.dtype or i.kind == "labels":
            continue
        if i.kind == "special":
            return False
        if i.kind == "array":
            v = np.asarray(i.values, dtype=np.float64)
            if not np.all(np.isfinite(v)) or not np.all(v == np.rint(v)):
                return False
            if dt == np.bool_ and not np.all((v == 0) | (v == 1)):
                return False
    schema = OPS[case.op]
    try:
        schema.infer(schema.name, _metas(case, dt.name), schema.normalize(case.attrs))
    except OpDispatchError:
        return False
    return True


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
    inputs = tuple(None if i is None else In.from_dict(i) for i in data["inputs"])
    attrs = {k: _tuples(v) for k, v in data.get("attrs", {}).items()}
    layout = data.get("layout", "contiguous")
    if layout not in LAYOUTS:
        raise ValueError(f"case: 'layout' got {layout!r}; allowed: {', '.join(LAYOUTS)}")
    return Case(data["op"], inputs, attrs, seed=int(data.get("seed", 0)), source=data.get("source", "repro"),
                layout=layout)


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the case was written with."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
