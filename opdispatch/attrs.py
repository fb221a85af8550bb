"""Normalisers for op attributes: user forms in, one canonical form out, or a clear error.

Each normaliser takes ``(op, arg, value)`` and returns the canonical value that
shape inference and kernels see (ints, bools, tuples of ints).
"""

from __future__ import annotations

import numbers
from typing import Any, Union

import numpy as np

from .errors import arg_error

Pair = tuple[int, int]

INT_MAX = 2**31 - 1
"""Largest size, stride, dilation or padding accepted (the limit ONNX runtimes and cuDNN use)."""
Padding2d = Union[str, tuple[Pair, Pair]]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def to_int(op: str, arg: str, value: Any, *, minimum: int | None = None) -> int:
    """An int (NumPy integers accepted, bools refused), at least ``minimum`` when given."""
    if not _is_int(value) or (minimum is not None and value < minimum):
        allowed = "an int" if minimum is None else f"an int >= {minimum}"
        raise arg_error(op, arg, value, allowed)
    return int(value)


def to_bool(op: str, arg: str, value: Any) -> bool:
    """A bool (NumPy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise arg_error(op, arg, value, "True or False")
    return bool(value)


def to_float(op: str, arg: str, value: Any, *, low: float | None = None, high: float | None = None,
             low_open: bool = False) -> float:
    """A real number within ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = v == v  # rejects NaN
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        raise arg_error(op, arg, value, "a real number " + " and ".join(s for s in (lo, hi) if s))
    return float(value)


def to_pair(op: str, arg: str, value: Any, *, minimum: int = 1) -> Pair:
    """An int or an (h, w) pair of ints, each at least ``minimum``, as an (h, w) tuple."""
    allowed = f"an int in [{minimum}, {INT_MAX}] or a pair (h, w) of such ints"
    if _is_int(value):
        items = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        items = tuple(value)
    else:
        raise arg_error(op, arg, value, allowed)
    if min(items) < minimum or max(items) > INT_MAX:
        raise arg_error(op, arg, value, allowed)
    return int(items[0]), int(items[1])


PADDING_ALLOWED = (f"an int in [0, {INT_MAX}], a pair (ph, pw), ((top, bottom), (left, right)) of such ints, "
                   "'VALID' or 'SAME'")


def to_padding(op: str, arg: str, value: Any) -> Padding2d:
    """Padding in canonical form: ``'SAME'`` (resolved later, it needs the input size) or explicit
    ``((top, bottom), (left, right))``. ``'VALID'`` becomes zeros."""
    if isinstance(value, str):
        upper = value.upper()
        if upper == "VALID":
            return ((0, 0), (0, 0))
        if upper == "SAME":
            return "SAME"
        raise arg_error(op, arg, value, PADDING_ALLOWED)
    if _is_int(value):
        if 0 <= value <= INT_MAX:
            p = int(value)
            return ((p, p), (p, p))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if all(_is_int(v) for v in value):
            ph, pw = int(value[0]), int(value[1])
            if 0 <= min(ph, pw) and max(ph, pw) <= INT_MAX:
                return ((ph, ph), (pw, pw))
        elif all(isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(i) for i in v) for v in value):
            (t, b), (l, r) = value  # noqa: E741 - top, bottom, left, right
            if 0 <= min(t, b, l, r) and max(t, b, l, r) <= INT_MAX:
                return ((int(t), int(b)), (int(l), int(r)))
    raise arg_error(op, arg, value, PADDING_ALLOWED)


def to_axis(op: str, arg: str, value: Any, ndim: int) -> int:
    """One axis, negative counting from the end, as a non-negative int below ``ndim``."""
    if not _is_int(value) or not -ndim <= value < ndim:
        raise arg_error(op, arg, value, f"an int in [{-ndim}, {ndim - 1}] for a rank-{ndim} input"
                        if ndim else "no axis: the input is a scalar")
    return int(value) % ndim


def to_axes(op: str, arg: str, value: Any, ndim: int) -> tuple[int, ...]:
    """None (every axis), one axis or a sequence of distinct axes, as a sorted tuple."""
    if value is None:
        return tuple(range(ndim))
    if _is_int(value):
        return (to_axis(op, arg, value, ndim),)
    if isinstance(value, (tuple, list)):
        axes = [to_axis(op, arg, v, ndim) if _is_int(v) else None for v in value]
        if None not in axes and len(set(axes)) == len(axes):
            return tuple(sorted(a for a in axes if a is not None))
    raise arg_error(op, arg, value, f"None, an int or a sequence of distinct ints in [{-ndim}, {ndim - 1}]")


def to_shape(op: str, arg: str, value: Any) -> tuple[int, ...]:
    """A shape: a sequence of ints >= -1 (at most one -1), or one int."""
    if _is_int(value):
        value = (value,)
    if isinstance(value, (tuple, list)) and all(_is_int(v) and v >= -1 for v in value) \
            and sum(1 for v in value if v == -1) <= 1:
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, "a sequence of ints >= 0, with at most one -1")
