"""Tolerances derived from the dtype's machine epsilon and the op's reduction length.

A float kernel that sums K rounded terms has an error that grows like ``sqrt(K) * eps`` times
the size of the terms (and at worst like ``K * eps``). So for an output in dtype ``d``::

    rtol = SAFETY * factor * eps(d) * sqrt(K + 1)
    atol = rtol * max(1, max |reference|)

``K`` comes from the op's schema (C_in*KH*KW for conv2d, the inner dimension for matmul, the
window for pooling, N*H*W for batch norm...) and ``factor`` is the schema's per-op override
(transcendental functions get a few ulps more). The absolute part scales with the output's
magnitude, because cancellation makes relative errors of near-zero outputs meaningless.

The reference is float64, the result is in the case's dtype: `compare` rounds the reference to
that dtype first, so a float64 value beyond the dtype's range is expected as the infinity the
correctly rounded result is (exp(100) is inf in float32: inf passes, NaN or a finite value far
from the reference fails), and the output's magnitude (hence ``atol``) counts only reference
values the dtype can hold.
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
    dtype: str = ""  # the dtype compared in ("": no rounding of the reference)

    def describe(self) -> str:
        return f"rtol {self.rtol:.2e} atol {self.atol:.2e} (eps {self.eps:.2e}, K {self.reduction_length}, " \
               f"factor {self.factor:g})"


def bound(dtype: Any, reduction_length: int, factor: float, reference: Sequence[np.ndarray]) -> Tolerance:
    """The tolerance in ``dtype`` for outputs that sum ``reduction_length`` terms, with per-op
    ``factor``, whose float64 references are ``reference``. An int or bool ``dtype`` (a run of the
    value ops in it) has no rounding to allow for: the bound is zero, every output is compared exactly."""
    dt = np.dtype(dtype)
    k = max(int(reduction_length), 1)
    if dt.kind in "iub":
        return Tolerance(rtol=0.0, atol=0.0, eps=0.0, reduction_length=k, factor=factor, dtype="")
    eps = float(np.finfo(dt).eps)
    rtol = SAFETY * factor * eps * math.sqrt(k + 1)
    finite = [np.abs(r[np.isfinite(rounded(r, dt.name))]) for r in (np.asarray(r, dtype=np.float64) for r in reference)]
    magnitude = max([1.0] + [float(f.max()) for f in finite if f.size])
    return Tolerance(rtol=rtol, atol=rtol * magnitude, eps=eps, reduction_length=k, factor=factor, dtype=dt.name)


def rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 ``values`` rounded to ``dtype`` and back (beyond its range: +-inf, as IEEE rounding
    says); unchanged when ``dtype`` is "" or float64."""
    values = np.asarray(values, dtype=np.float64)
    if not dtype or np.dtype(dtype) == np.float64:
        return values
    with np.errstate(over="ignore"):
        return values.astype(dtype).astype(np.float64)


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
    """Compare an output against its float64 reference rounded to ``tol.dtype``: the same NaN
    positions, the same infinities, and ``|a - e| <= atol + rtol * |e|`` elsewhere.

    Where the reference is finite but beyond the dtype's range, the expected value is the infinity
    it rounds to (a finite result within the bound of the float64 value passes too); where the
    reference is finite and within the bound of the dtype's largest value, a result that rounded
    up to the infinity of the same sign passes (a correctly rounded kernel may overflow there)."""
    if np.asarray(actual).dtype.kind in "iub" or np.asarray(expected).dtype.kind in "iub":
        return compare_exact(actual, expected)
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    e_d = rounded(e, tol.dtype)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if not np.array_equal(nan_a, nan_e):
        where = np.argwhere(nan_a != nan_e)[0]
        return Comparison(False, math.inf, math.inf, f"NaN mismatch at index {tuple(int(i) for i in where)}: "
                                                     f"got {a[tuple(where)]}, expected {_expected(e, e_d, where)}")
    big = float(np.finfo(np.dtype(tol.dtype or "float64")).max)
    with np.errstate(invalid="ignore", over="ignore"):
        diff_all = np.abs(a - e)
        bound_all = tol.atol + tol.rtol * np.abs(e)
    inf_e = np.isinf(e_d)
    overflow = inf_e & np.isfinite(e)  # finite in float64, infinite in the dtype
    inf_ok = (a == e_d) | (overflow & np.isfinite(a) & (diff_all <= bound_all))
    bad = inf_e & ~inf_ok
    if bad.any():
        where = np.argwhere(bad)[0]
        return Comparison(False, math.inf, math.inf, f"infinities differ from the reference at index "
                                                     f"{tuple(int(i) for i in where)}: got {a[tuple(where)]}, "
                                                     f"expected {_expected(e, e_d, where)}")
    mask = np.isfinite(e_d) & ~nan_a
    if not mask.any():
        return Comparison(True, 0.0, 0.0)
    # a result that overflowed to the infinity of the reference's sign, where the reference lies
    # within its bound of the dtype's largest finite value
    edge = mask & np.isinf(a) & (np.sign(a) == np.sign(e)) & (np.abs(e) + bound_all >= big)
    mask &= ~edge
    if not mask.any():
        return Comparison(True, 0.0, 0.0)
    diff = diff_all[mask]
    if not np.all(np.isfinite(diff)):
        where = np.argwhere(mask)[int(np.argmax(~np.isfinite(diff)))]
        return Comparison(False, math.inf, math.inf, f"non-finite values where the reference is finite: at index "
                                                     f"{tuple(int(i) for i in where)} got {a[tuple(where)]}, "
                                                     f"expected {e[tuple(where)]:.9g}")
    with np.errstate(over="ignore"):
        rel = diff / np.maximum(np.abs(e[mask]), np.finfo(np.float64).tiny)
    bound = bound_all[mask]
    worst = int(np.argmax(diff - bound))
    ok = bool(np.all(diff <= bound))
    max_abs, max_rel = float(diff.max()), float(rel.max())
    if ok:
        return Comparison(True, max_abs, max_rel)
    idx = tuple(int(i) for i in np.argwhere(mask)[worst])
    return Comparison(False, max_abs, max_rel, f"at index {idx}: got {a[idx]:.9g}, expected {e[idx]:.9g} "
                                               f"(|diff| {diff[worst]:.3g} > bound {bound[worst]:.3g})")


def compare_exact(actual: np.ndarray, expected: np.ndarray) -> Comparison:
    """An integer or bool result (comparisons, indices) against its reference: equal element for
    element, in the same kind (no tolerance: an index off by one or a flipped mask is wrong)."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.dtype.kind != e.dtype.kind and not (a.dtype.kind in "iu" and e.dtype.kind in "iu"):
        return Comparison(False, math.inf, math.inf, f"got dtype {a.dtype}, the reference has {e.dtype} (an integer "
                                                     f"or bool result must match exactly)")
    if a.shape != e.shape:
        return Comparison(False, math.inf, math.inf, f"got shape {a.shape}, the reference has {e.shape}")
    wrong = a != e
    if not wrong.any():
        return Comparison(True, 0.0, 0.0)
    where = tuple(int(i) for i in np.argwhere(wrong)[0]) if a.ndim else ()
    diff = float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64))))
    return Comparison(False, diff, math.inf, f"{int(wrong.sum())} element(s) differ (exact comparison); at index "
                                             f"{where}: got {a[where]!r}, expected {e[where]!r}")


def _expected(e: np.ndarray, e_d: np.ndarray, where: Any) -> str:
    """The expected value at ``where`` in words: the float64 reference, and what it rounds to in the
    dtype where that overflows or underflows."""
    at = tuple(int(i) for i in where)
    if np.isfinite(e[at]) and (np.isinf(e_d[at]) or (e_d[at] == 0) != (e[at] == 0)):  # overflow or underflow
        return f"{e_d[at]:.9g} (the float64 reference {e[at]:.9g} rounded to the dtype)"
    return f"{e[at]:.9g}"


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
        if np.asarray(expected).dtype.kind in "iub":  # exact: no bound to measure against
            return cmp
        finite = np.abs(np.asarray(expected, dtype=np.float64))
        finite = finite[np.isfinite(rounded(finite, tol.dtype))]
        bound = tol.atol + tol.rtol * float(np.max(finite, initial=0.0))
        self.ratio = max(self.ratio, cmp.max_abs / bound if bound else 0.0)
        return cmp
