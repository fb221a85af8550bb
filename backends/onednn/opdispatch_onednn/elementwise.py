"""The unary element-wise ops where oneDNN's eltwise primitive measured faster than the NumPy kernels
(sigmoid, gelu with erf or tanh, hardswish, hardsigmoid, leaky_relu), on any shape (run as one flat
vector over memory in its order: an eltwise op does not care about the layout, and a channels-last input
gives a channels-last result, as NumPy's ufuncs do).

oneDNN's eltwise kernels differ from opdispatch's rules on non-finite input (relu's ``max(x, 0)``
turns NaN into 0; exp's range clamp turns NaN into a large finite number), so an input that is not
all finite (its sum is not: one pass) runs the NumPy backend's kernel instead. Small inputs (under
`MIN_SIZE` elements) are declined by `supports()`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from opdispatch_numpy import elementwise as numpy_elementwise

from . import library as L
from .conv import _empty
from .primitives import CACHE, Attr, Primitive, PrimitiveDesc, accepted, empty, plain

DECLINE_SLOWER = True
"""Whether `supports()` declines inputs under `MIN_SIZE` (tests turn it off to run small inputs)."""

MIN_SIZE: dict[str, int] = {"sigmoid": 1 << 19, "leaky_relu": 1 << 19, "gelu": 1 << 17, "gelu_tanh": 1 << 21,
                            "hardswish": 1 << 21, "hardsigmoid": 1 << 21}
"""Elements below which NumPy's kernel runs, per op (``gelu_tanh``: gelu with ``approximate='tanh'``).

Measured with ``bench/onednn_kernels.py`` (the eltwise rows, paired, 11 repetitions, load 3.3 on the 2
cores), median onednn/numpy time at 64k / 800k / 6.4M elements: sigmoid 14.8x / 0.73x / 0.07x; gelu (erf)
1.7x / 0.11x / 0.02x; gelu (tanh) 34x / 4.8x / 0.35x; hardswish 17x / 3.9x / 0.21x; hardsigmoid
1.9x / 4.1x / 0.41x; leaky_relu 26x / 0.19x / 0.14x. Under that load most of a small call's oneDNN
time is its OpenMP parallel region waiting for a descheduled thread (a few ms; 0.03 ms back to back).
Not served at all, since NumPy's single-pass ufuncs were faster at every size (6.4M elements: relu
3.9x, tanh 6.1x, exp 2.8x, log 7.1x, sqrt 5.7x, abs 4.2x, clip 1.5x, relu_backward 1.4x): a oneDNN
call there costs the finiteness check's pass on top of a pass as fast as NumPy's.
"""


def _hard(attrs: dict) -> tuple[float, float]:
    return 1.0 / 6.0, 0.5


# op -> (alg kind (or a function of attrs giving it), alpha/beta from attrs)
FORWARD: dict[str, tuple[Any, Callable[[dict], tuple[float, float]]]] = {
    "leaky_relu": (L.ELTWISE_RELU, lambda a: (a["negative_slope"], 0.0)),
    "sigmoid": (L.ELTWISE_LOGISTIC, lambda a: (0.0, 0.0)),
    "hardsigmoid": (L.ELTWISE_HARDSIGMOID, _hard),
    "hardswish": (L.ELTWISE_HARDSWISH, _hard),
    "gelu": (lambda a: L.ELTWISE_GELU_TANH if a["approximate"] == "tanh" else L.ELTWISE_GELU_ERF,
             lambda a: (0.0, 0.0)),
}


def _alg(op: str, attrs: dict) -> tuple[int, float, float]:
    kind, ab = FORWARD[op]
    alpha, beta = ab(attrs)
    return (kind(attrs) if callable(kind) else kind), float(alpha), float(beta)


def _forward(size: int, alg: int, alpha: float, beta: float) -> Primitive:
    lib = L.load()
    src, dst, attr = plain(lib, (size,)), plain(lib, (size,)), Attr(lib)
    pd = PrimitiveDesc(lib, lambda out: lib.dnnl_eltwise_forward_primitive_desc_create(
        out, lib.engine, L.FORWARD_INFERENCE, alg, src.handle, dst.handle, alpha, beta, attr.handle),
        "eltwise forward")
    return Primitive(lib, pd, {L.ARG_SRC: plain(lib, (size,)), L.ARG_DST: plain(lib, (size,))}, inputs=(L.ARG_SRC,))


def _forward_primitive(size: int, alg: int, alpha: float, beta: float, reason: bool = False) -> Any:
    """The cached primitive (with ``reason``, instead why oneDNN cannot build it; None when it can)."""
    key, build = ("eltwise", size, alg, alpha, beta), lambda: _forward(size, alg, alpha, beta)
    return CACHE.reason(key, build) if reason else CACHE.get(key, build)


def _size_reason(op: str, metas: Sequence[Any], attrs: dict) -> Optional[str]:
    reason = _empty(metas)
    if reason or not DECLINE_SLOWER:
        return reason
    size, least = math.prod(metas[0].shape), MIN_SIZE[_variant(op, attrs)]
    if size < least:
        return f"a small input ({size} elements, under {least}): NumPy's kernel measured faster"
    return None


def _variant(op: str, attrs: dict) -> str:
    return "gelu_tanh" if op == "gelu" and attrs["approximate"] == "tanh" else op


def _supports(op: str) -> Callable[[Sequence[Any], dict], Optional[str]]:
    def supports(metas: Sequence[Any], attrs: dict) -> Optional[str]:
        return _size_reason(op, metas, attrs) or _forward_primitive(max(1, math.prod(metas[0].shape)),
                                                                    *_alg(op, attrs), reason=True)
    return supports


def _finite(a: np.ndarray) -> bool:
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum(dtype=np.float32)))


def _kernel(op: str) -> Callable[..., np.ndarray]:
    fallback = numpy_elementwise.KERNELS[op]

    def kernel(x, **attrs):
        x = np.asarray(x)  # a 0-d input may come as a NumPy scalar
        if not _finite(x):
            return fallback(x, **attrs)
        p = _forward_primitive(max(1, x.size), *_alg(op, attrs))
        p.check_fits(op, 4 * x.size)
        x, layout = accepted(x)  # run over memory in its order: y keeps x's layout (a channels-last x too)
        y = empty(x.shape, layout)
        p.run({L.ARG_SRC: x, L.ARG_DST: y})
        return y
    kernel.__name__ = kernel.__qualname__ = op
    kernel.__doc__ = f"{op} as a oneDNN eltwise primitive (the NumPy kernel on non-finite input)."
    return kernel


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[Sequence[Any], dict], Optional[str]]]] = {
    op: (_kernel(op), _supports(op)) for op in FORWARD}
"""op -> (kernel, supports) for float32 on numpy:0."""
