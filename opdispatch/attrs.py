"""Normalisers for op attributes: user forms in, one canonical form out, or a clear error.

Each normaliser takes ``(op, arg, value)`` and returns the canonical value that
shape inference and kernels see (ints, bools, tuples of ints). A `KernelForm` says that canonical
form in words (``opdispatch ops``) and as a check; the shared normalisers' forms are in
`NORMALIZER_FORMS`, and an attribute normalised otherwise declares its form beside it
(``Attr(..., form=...)`` in its op's family module).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

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


# -- the forms kernels receive -----------------------------------------------------------------------

@dataclass(frozen=True)
class KernelForm:
    """The form an attribute arrives in at a kernel: ``text`` for people (``opdispatch ops``),
    ``check(value, metas)`` for the test that keeps ``text`` true (``metas``: the call's input metas,
    None for an absent input)."""

    text: str
    check: Callable[[Any, Sequence[Any]], bool]


def is_ints(value: Any, n: Optional[int] = None, minimum: Optional[int] = None) -> bool:
    """Whether ``value`` is a tuple of ints (of length ``n``, each at least ``minimum``, when given)."""
    return (isinstance(value, tuple) and (n is None or len(value) == n) and all(_is_int(i) for i in value)
            and (minimum is None or all(i >= minimum for i in value)))


def first_ndim(metas: Sequence[Any]) -> int:
    """The rank of the first present input."""
    return len(next(m for m in metas if m is not None).shape)


def one_of(*choices: str) -> KernelForm:
    """The form of an attribute that arrives as one of ``choices``."""
    return KernelForm(f"one of {', '.join(map(repr, choices))}", lambda v, m: v in choices)


PAIR = KernelForm("(h, w): a tuple of two ints >= 1", lambda v, m: is_ints(v, 2, 1))
PAIR0 = KernelForm("(h, w): a tuple of two ints >= 0", lambda v, m: is_ints(v, 2, 0))
PADDING = KernelForm("((top, bottom), (left, right)): a tuple of two pairs of ints >= 0 (an int, a pair, "
                     "'VALID' and 'SAME' arrive resolved to this)",
                     lambda v, m: isinstance(v, tuple) and len(v) == 2 and all(is_ints(p, 2, 0) for p in v))
BOOL = KernelForm("a bool", lambda v, m: isinstance(v, bool))
FLOAT = KernelForm("a float", lambda v, m: isinstance(v, float))
OPTIONAL_FLOAT = KernelForm("a float, or None (no bound)", lambda v, m: v is None or isinstance(v, float))
POSITIVE_INT = KernelForm("an int >= 1", lambda v, m: _is_int(v) and v >= 1)
AXIS = KernelForm("an int in [0, ndim) (negative axes arrive resolved)",
                  lambda v, m: _is_int(v) and 0 <= v < max(first_ndim(m), 1))
OPTIONAL_AXIS = KernelForm("an int in [0, ndim), or None (the flattened tensor)",
                           lambda v, m: v is None or (_is_int(v) and 0 <= v < max(first_ndim(m), 1)))
AXES = KernelForm("a sorted tuple of distinct ints in [0, ndim) (None arrives as every axis, negative "
                  "axes resolved)",
                  lambda v, m: is_ints(v, minimum=0) and list(v) == sorted(set(v))
                  and all(a < first_ndim(m) for a in v))
SHAPE = KernelForm("a tuple of ints >= 0 (a -1 arrives resolved)", lambda v, m: is_ints(v, minimum=0))

NORMALIZER_FORMS: dict[Callable[..., Any], KernelForm] = {to_pair: PAIR, to_padding: PADDING, to_bool: BOOL,
                                                          to_float: FLOAT, to_shape: SHAPE}
"""The forms of the attributes these shared normalisers produce (used where an `Attr` declares none)."""
