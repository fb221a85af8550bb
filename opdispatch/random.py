"""``od.random``: opdispatch's random numbers, and the global random state.

    od.random.seed(0)                        # every draw after it is reproducible, in every process
    x = od.random.normal((2, 3))             # float32 N(0, 1) on the current device
    u = od.random.uniform((4,), low=-1.0, high=1.0, dtype="float64", device="opencl:0")
    g = od.random.Generator(42)              # an independent stream
    w = g.normal((3, 3), std=0.1)

**The state.** A splitmix64 sequence: ``seed(s)`` sets it, each draw takes its next 64-bit value.
One global state serves everything: ``od.random.normal``/``uniform`` take one draw per call, and
``od.dropout(x, seed=None)`` takes one per call (its seed). A `Generator` is a state of its own.
Never seeded, the global state starts from OS entropy.

**The numbers, bit for bit the same on every device.** A call with key ``k`` (its draw) fills
element i (row-major) from the counter-based hash ``h(i) = mix64(mix64(k + GOLDEN) + i * GOLDEN)``
(mod 2**64; the hash of dropout's mask, `opdispatch.reference.nn`), computed on the host in NumPy
uint64 arithmetic, then copied to the device, so every device gets the same values:

- ``uniform``: ``u = (h(i) >> 11) * 2**-53`` in [0, 1) (53 random bits, exact in float64), then
  ``low + (high - low) * u`` in float64, rounded once (to nearest) to ``dtype``; a value that rounds
  up to ``high`` becomes the largest ``dtype`` value below it, so every value is in [low, high).
- ``normal``: Box-Muller on pairs: for pair j, ``u1 = ((h(2j) >> 11) + 1) * 2**-53`` in (0, 1] and
  ``u2 = (h(2j+1) >> 11) * 2**-53``; ``r = sqrt(-2 ln u1)``, elements 2j and 2j+1 are ``r cos(2 pi u2)``
  and ``r sin(2 pi u2)`` (float64, NumPy), then ``mean + std * z`` in float64, rounded once to ``dtype``.

Element i depends only on the key and i, so a larger shape extends a smaller one (same key).
Host generation of 1e6 float32 elements takes about 8 ms (uniform) or 45 ms (normal: log, cos and
sin in float64) on one core, the copy to the device included (NumPy's own Generator: 3 and 10 ms).

**Under od.function** a ``normal``/``uniform`` call inside the traced function draws once, when it
is traced, and its tensor becomes a constant of the graph: every run of that graph sees the same
numbers (a retrace draws anew). For fresh noise on every run, pass it in as an argument
(``f(x, od.random.normal(x.shape))``). Dropout is different: ``od.dropout(x, seed=None)`` in a graph
draws a fresh seed per run -- the tracer hands out `opdispatch.ops.nn.RunSeed` markers, numbered in
the order of the traced calls, and each run of the graph draws that many seeds here (`run_seeds`)
before it starts, so a graph makes the same draws, in the same order, as the eager code it was
traced from. Saved graphs keep the markers.
"""

from __future__ import annotations

import math
import numbers
import secrets
import threading
from typing import Any, Mapping, Union

import numpy as np

from . import recording
from .attrs import _is_int
from .constructors import DeviceLike, ShapeLike, on_device, to_dtype, to_shape
from .errors import arg_error
from .ops.nn import RunSeed
from .reference.nn import GOLDEN, MASK64, hash_array, mix64
from .tensor import Tensor

__all__ = ["seed", "Generator", "normal", "uniform"]


class _State:
    """A splitmix64 sequence (thread-safe): draw n returns mix64(seed + n * GOLDEN)."""

    def __init__(self, s: int) -> None:
        self._lock = threading.Lock()
        self._seed, self._count = s, 0

    def reset(self, s: int) -> None:
        with self._lock:
            self._seed, self._count = s, 0

    def take(self, n: int) -> list[int]:
        """The next ``n`` draws, consecutive even when other threads draw too."""
        with self._lock:
            start = self._count
            self._count += n
            base = self._seed
        return [mix64((base + (start + k + 1) * GOLDEN) & MASK64) for k in range(n)]


_STATE = _State(secrets.randbits(64))


def seed(s: int) -> None:
    """Seed the global random state with an int in [0, 2**64): every draw after it (``od.random.normal``,
    ``od.random.uniform``, the seeds of ``od.dropout(..., seed=None)``, eager or in a graph) is the same
    in every process."""
    _STATE.reset(_check_seed("od.random.seed", s))


def _check_seed(op: str, s: Any) -> int:
    if not _is_int(s) or not 0 <= s <= MASK64:
        raise arg_error(op, "s", s, "an int in [0, 2**64)")
    return int(s)


def next_seed() -> Union[int, RunSeed]:
    """The seed of the next random op call (``od.dropout`` with ``seed=None``): a draw from the global
    state; while ``od.function`` traces, a `RunSeed` marker from the tracer (resolved per run)."""
    for recorder in reversed(recording.active()):
        if getattr(recorder, "symbolic", False) and hasattr(recorder, "run_seed"):
            return recorder.run_seed()
    return _STATE.take(1)[0]


def run_seeds(count: int) -> list[int]:
    """The seeds of one graph run: the next ``count`` draws (`RunSeed(k)` takes the k-th)."""
    return _STATE.take(count) if count else []


def seed_count(attrs: Mapping[str, Any]) -> int:
    """1 + the largest `RunSeed` index among ``attrs``' values (0 when none is one)."""
    return max((v.draw + 1 for v in attrs.values() if isinstance(v, RunSeed)), default=0)


def with_run_seeds(attrs: dict, seeds: list[int]) -> dict:
    """``attrs`` with every `RunSeed(k)` replaced by ``seeds[k]`` (``attrs`` itself when none is one)."""
    if not any(isinstance(v, RunSeed) for v in attrs.values()):
        return attrs
    return {k: seeds[v.draw] if isinstance(v, RunSeed) else v for k, v in attrs.items()}


# -- random numbers: a counter-based hash on the host ----------------------------------------------

_U = np.uint64
_TWO_M53 = 2.0 ** -53


def hash_bits(key: int, n: int) -> np.ndarray:
    """``h(i)`` for i in [0, n): the uint64 hash of draw ``key`` (see the module docstring): dropout's."""
    return hash_array(key, n)


def uniform_bits(key: int, n: int) -> np.ndarray:
    """n float64 values in [0, 1): ``(h(i) >> 11) * 2**-53``."""
    return (hash_bits(key, n) >> _U(11)).astype(np.float64) * _TWO_M53


def _real(op: str, arg: str, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if not ok:
        raise arg_error(op, arg, value, "a finite real number")
    return float(value)


def uniform_array(key: int, shape: tuple[int, ...], low: float, high: float, dtype: np.dtype) -> np.ndarray:
    """The host values of ``uniform`` with draw ``key`` (every value in [low, high))."""
    u = uniform_bits(key, math.prod(shape))
    with np.errstate(over="ignore"):
        out = (low + (high - low) * u).astype(dtype)
        top = np.nextafter(dtype.type(high), dtype.type(low))
    np.minimum(out, top, out=out)
    return out.reshape(shape)


def normal_array(key: int, shape: tuple[int, ...], mean: float, std: float, dtype: np.dtype) -> np.ndarray:
    """The host values of ``normal`` with draw ``key`` (Box-Muller on pairs of hashes)."""
    n = math.prod(shape)
    pairs = (n + 1) // 2
    bits = hash_bits(key, 2 * pairs) >> _U(11)
    u1 = (bits[0::2] + _U(1)).astype(np.float64) * _TWO_M53
    u2 = bits[1::2].astype(np.float64) * _TWO_M53
    r = np.sqrt(-2.0 * np.log(u1))
    theta = (2.0 * math.pi) * u2
    z = np.empty(2 * pairs, dtype=np.float64)
    z[0::2] = r * np.cos(theta)
    z[1::2] = r * np.sin(theta)
    with np.errstate(over="ignore"):
        return (mean + std * z[:n]).astype(dtype).reshape(shape)


def _uniform(state: _State, op: str, shape: ShapeLike, low: Any, high: Any, dtype: Any,
             device: DeviceLike) -> Tensor:
    dims = to_shape(op, shape)
    lo, hi = _real(op, "low", low), _real(op, "high", high)
    if not lo < hi:
        raise arg_error(op, "high", high, f"a number > low ({lo!r})")
    dt = to_dtype(op, dtype, floats_only=True)
    return on_device(op, uniform_array(state.take(1)[0], dims, lo, hi, dt), device)


def _normal(state: _State, op: str, shape: ShapeLike, mean: Any, std: Any, dtype: Any,
            device: DeviceLike) -> Tensor:
    dims = to_shape(op, shape)
    mu, sigma = _real(op, "mean", mean), _real(op, "std", std)
    if sigma < 0:
        raise arg_error(op, "std", std, "a finite number >= 0")
    dt = to_dtype(op, dtype, floats_only=True)
    return on_device(op, normal_array(state.take(1)[0], dims, mu, sigma, dt), device)


def normal(shape: ShapeLike, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None,
           device: DeviceLike = None) -> Tensor:
    """Normal N(mean, std**2) samples of ``shape`` (dtype default float32, device default the current
    one), from one draw of the global state: the same bits on every device (see the module docstring).
    Inside ``od.function`` the result is a graph constant (drawn when traced)."""
    return _normal(_STATE, "od.random.normal", shape, mean, std, dtype, device)


def uniform(shape: ShapeLike, low: float = 0.0, high: float = 1.0, *, dtype: Any = None,
            device: DeviceLike = None) -> Tensor:
    """Uniform samples in [low, high) of ``shape`` (dtype default float32, device default the current
    one), from one draw of the global state: the same bits on every device (see the module docstring).
    Inside ``od.function`` the result is a graph constant (drawn when traced)."""
    return _uniform(_STATE, "od.random.uniform", shape, low, high, dtype, device)


class Generator:
    """An independent random stream: ``g = od.random.Generator(42)``; ``g.normal(shape)``,
    ``g.uniform(shape)`` as the module functions, drawing from ``g``'s own splitmix64 state (never from
    or into the global one), so two generators with one seed give the same numbers."""

    def __init__(self, seed: int) -> None:
        self._state = _State(_check_seed("od.random.Generator", seed))

    def seed(self, s: int) -> None:
        """Restart this generator's stream from ``s``."""
        self._state.reset(_check_seed("Generator.seed", s))

    def normal(self, shape: ShapeLike, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None,
               device: DeviceLike = None) -> Tensor:
        """As `od.random.normal`, from this generator."""
        return _normal(self._state, "Generator.normal", shape, mean, std, dtype, device)

    def uniform(self, shape: ShapeLike, low: float = 0.0, high: float = 1.0, *, dtype: Any = None,
                device: DeviceLike = None) -> Tensor:
        """As `od.random.uniform`, from this generator."""
        return _uniform(self._state, "Generator.uniform", shape, low, high, dtype, device)

    def __repr__(self) -> str:
        return f"<od.random.Generator, {self._state._count} draw(s) taken>"
