"""Tolerances derived from the dtype's machine epsilon and the op's reduction length.

A float kernel that sums K rounded terms has an error that grows like ``sqrt(K) * eps`` times
the size of the terms (and at worst like ``K * eps``). So for an output in dtype ``d``::

    rtol = SAFETY * factor * eps(d) * sqrt(K + 1)
    atol = rtol * max(1, max |reference|)

``K`` comes from the op's schema (C_in*KH*KW for conv2d, the inner dimension for matmul, the
window for pooling, N*H*W for batch norm...) and ``factor`` is the schema's per-op override
(transcendental functions get a few ulps more). The absolute part scales with the output's
magnitude, because cancellation makes relative errors of near-zero outputs meaningless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from opdispatch import TensorMeta
from opdispatch.ops import OpSchema

SAFETY = 8.0


@dataclass(frozen=True)
class Tolerance:
    """The bounds one comparison uses, and where they came from."""

    rtol: float
    atol: float
    eps: float
    reduction_length: int
    factor: float

    def describe(self) -> str:
        return f"rtol {self.rtol:.2e} atol {self.atol:.2e} (eps {self.eps:.2e}, K {self.reduction_length}, " \
               f"factor {self.factor:g})"


def bound(dtype: Any, reduction_length: int, factor: float, reference: Sequence[np.ndarray]) -> Tolerance:
    """The tolerance in ``dtype`` for outputs that sum ``reduction_length`` terms, with per-op
    ``factor``, whose float64 references are ``reference``."""
    eps = float(np.finfo(np.dtype(dtype)).eps)
    k = max(int(reduction_length), 1)
    rtol = SAFETY * factor * eps * math.sqrt(k + 1)
    finite = [np.abs(r[np.isfinite(r)]) for r in reference]
    magnitude = max([1.0] + [float(f.max()) for f in finite if f.size])
    return Tolerance(rtol=rtol, atol=rtol * magnitude, eps=eps, reduction_length=k, factor=factor)


def derive(schema: OpSchema, metas: Sequence[Optional[TensorMeta]], kattrs: dict, dtype: Any,
           reference: Sequence[np.ndarray]) -> Tolerance:
    """The tolerance for one call of ``schema`` whose float64 reference outputs are ``reference``."""
    return bound(dtype, schema.reduction_length(metas, kattrs), schema.tolerance_factor, reference)


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one output: passed, worst errors, and what went wrong."""

    ok: bool
    max_abs: float
    max_rel: float
    problem: str = ""


def compare(actual: np.ndarray, expected: np.ndarray, tol: Tolerance) -> Comparison:
    """Compare an output against its reference: same NaN and infinity positions, and
    ``|a - e| <= atol + rtol * |e|`` elsewhere."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if not np.array_equal(nan_a, nan_e):
        where = np.argwhere(nan_a != nan_e)[0]
        return Comparison(False, math.inf, math.inf, f"NaN mismatch at index {tuple(int(i) for i in where)}: "
                                                     f"got {a[tuple(where)]}, expected {e[tuple(where)]}")
    inf_e = np.isinf(e)
    if not np.array_equal(a[inf_e], e[inf_e]):
        return Comparison(False, math.inf, math.inf, "infinities differ from the reference")
    mask = np.isfinite(e) & ~nan_a
    if not mask.any():
        return Comparison(True, 0.0, 0.0)
    diff = np.abs(a[mask] - e[mask])
    if not np.all(np.isfinite(diff)):
        return Comparison(False, math.inf, math.inf, "non-finite values where the reference is finite")
    with np.errstate(over="ignore"):
        rel = diff / np.maximum(np.abs(e[mask]), np.finfo(np.float64).tiny)
    bound = tol.atol + tol.rtol * np.abs(e[mask])
    worst = int(np.argmax(diff - bound))
    ok = bool(np.all(diff <= bound))
    max_abs, max_rel = float(diff.max()), float(rel.max())
    if ok:
        return Comparison(True, max_abs, max_rel)
    idx = tuple(int(i) for i in np.argwhere(mask)[worst])
    return Comparison(False, max_abs, max_rel, f"at index {idx}: got {a[idx]:.9g}, expected {e[idx]:.9g} "
                                               f"(|diff| {diff[worst]:.3g} > bound {bound[worst]:.3g})")


@dataclass
class Worst:
    """The worst errors over the outputs of one case: absolute, relative, and error over bound."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    ratio: float = 0.0

    def compare(self, actual: np.ndarray, expected: np.ndarray, tol: Tolerance) -> Comparison:
        """`compare` one output and fold its errors into the worst ones."""
        cmp = compare(actual, expected, tol)
        self.max_abs, self.max_rel = max(self.max_abs, cmp.max_abs), max(self.max_rel, cmp.max_rel)
        bound = tol.atol + tol.rtol * float(np.max(np.abs(expected), initial=0.0))
        self.ratio = max(self.ratio, cmp.max_abs / bound if bound else 0.0)
        return cmp
