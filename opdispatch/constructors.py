"""Tensor constructors: ``od.zeros``, ``od.ones``, ``od.full``, ``od.zeros_like``, ``od.ones_like``,
``od.arange``, ``od.linspace``, ``od.eye``.

    x = od.zeros((2, 3))                       # float32 on the current device (od.device(...))
    r = od.arange(10)                          # float32 too (ints as arguments or not)
    i = od.arange(10, dtype="int64")           # NumPy's int64 range
    w = od.full((3,), 0.5, dtype="float64", device="opencl:0")

Every constructor takes ``dtype=`` (default float32, whatever the arguments: ``od.arange(5)`` and
``od.full(shape, 7)`` are float32, unlike NumPy; ``zeros_like``/``ones_like`` take ``t``'s dtype)
and ``device=`` (default: the current device). The values are built on the host with NumPy in the
requested dtype (float64 and then rounded once to ``dtype`` for ``arange`` and ``linspace`` with
floats) and copied to the device, so every device holds the same bits. Inside ``od.function`` a
constructed tensor is a constant of the graph (as every tensor made or captured while tracing is).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from .attrs import INT_MAX, _is_int
from .device import Device
from .dtypes import FLOAT_DTYPES, FLOAT_NAMES, KERNEL_DTYPES, as_dtype
from .errors import DTypeError, InvalidArgumentError, arg_error
from .placement import current_placement
from .registry import registry
from .tensor import DEFAULT_FLOAT, Tensor, check_device_dtype, make

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "arange", "linspace", "eye"]

ShapeLike = Union[int, Sequence[int]]
DeviceLike = Union[str, Device, None]

_DTYPE_NAMES = ", ".join(d.name for d in KERNEL_DTYPES)


def to_shape(op: str, shape: Any) -> tuple[int, ...]:
    """A shape: an int or a sequence of ints, each in [0, 2**31); else an `InvalidArgumentError`."""
    dims = (shape,) if _is_int(shape) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise arg_error(op, "shape", shape, "an int or a sequence of ints >= 0") from None
    if not all(_is_int(d) and 0 <= d <= INT_MAX for d in dims):
        raise arg_error(op, "shape", shape, f"an int or a sequence of ints in [0, {INT_MAX}]")
    return tuple(int(d) for d in dims)


def to_dtype(op: str, dtype: Any, default: np.dtype = DEFAULT_FLOAT, floats_only: bool = False) -> np.dtype:
    """``dtype`` (None: ``default``) as a NumPy dtype that tensors may have, or a `DTypeError`."""
    if dtype is None:
        return default
    try:
        dt = as_dtype(dtype)
    except DTypeError:
        dt = None
    allowed = FLOAT_DTYPES if floats_only else KERNEL_DTYPES
    if dt is None or dt not in allowed:
        raise DTypeError(f"{op}: argument 'dtype' got {dtype!r}; allowed: "
                         f"{FLOAT_NAMES if floats_only else _DTYPE_NAMES}")
    return dt


def on_device(op: str, arr: np.ndarray, device: DeviceLike) -> Tensor:
    """Copy host array ``arr`` to ``device`` (default: the current one) as a tensor."""
    rt = registry().runtime(current_placement().device if device is None else Device(device))
    check_device_dtype(rt, arr.dtype, op)
    return make(rt.from_numpy(np.ascontiguousarray(arr), rt.device), arr.shape, arr.dtype, rt)


def _number(op: str, arg: str, value: Any) -> Union[int, float]:
    """A real number argument (Python or NumPy); bools refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise arg_error(op, arg, value, "a real number (int or float)")
    return int(value) if _is_int(value) else float(value)  # type: ignore[call-overload]


def zeros(shape: ShapeLike, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """A tensor of ``shape`` filled with 0 (dtype default float32)."""
    return on_device("zeros", np.zeros(to_shape("zeros", shape), to_dtype("zeros", dtype)), device)


def ones(shape: ShapeLike, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """A tensor of ``shape`` filled with 1 (dtype default float32)."""
    return on_device("ones", np.ones(to_shape("ones", shape), to_dtype("ones", dtype)), device)


def full(shape: ShapeLike, value: Any, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """A tensor of ``shape`` filled with ``value`` (a number: int, float or bool). dtype default
    float32, whatever the value (``od.full(2, 7)`` is float32; ``dtype="int64"`` gives ints)."""
    dims = to_shape("full", shape)
    if not isinstance(value, (bool, np.bool_, numbers.Real)):
        raise arg_error("full", "value", value, "a number (int, float or bool)")
    dt = to_dtype("full", dtype)
    try:
        with np.errstate(over="raise", invalid="ignore"):
            arr = np.full(dims, value, dt)
    except (OverflowError, FloatingPointError):
        raise DTypeError(f"full: argument 'value' got {value!r}, out of range for {dt.name}; "
                         f"allowed: a value that fits dtype (pass dtype=...)") from None
    return on_device("full", arr, device)


def _like(op: str, t: Any, dtype: Any, device: DeviceLike) -> tuple[tuple[int, ...], np.dtype, DeviceLike]:
    if isinstance(t, Tensor):
        shape, dt, dev = t.shape, t.dtype, t.device
    elif isinstance(t, np.ndarray):
        shape, dt, dev = t.shape, t.dtype, None
    else:
        raise arg_error(op, "t", type(t).__name__, "a Tensor or a NumPy array", InvalidArgumentError)
    return shape, to_dtype(op, dtype, dt if dt in KERNEL_DTYPES else DEFAULT_FLOAT), dev if device is None else device


def zeros_like(t: Any, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """Zeros of ``t``'s shape, with its dtype and on its device (a NumPy array: the current device)
    unless ``dtype``/``device`` say otherwise. Only ``t``'s shape and dtype are read (it may be traced)."""
    shape, dt, dev = _like("zeros_like", t, dtype, device)
    return on_device("zeros_like", np.zeros(shape, dt), dev)


def ones_like(t: Any, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """Ones of ``t``'s shape, with its dtype and on its device (see `zeros_like`)."""
    shape, dt, dev = _like("ones_like", t, dtype, device)
    return on_device("ones_like", np.ones(shape, dt), dev)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """Evenly spaced values in [start, stop) by ``step``, as ``np.arange`` (one argument: [0, start)).

    dtype default float32, int arguments included (``od.arange(5)`` is float32; pass
    ``dtype="int64"`` for NumPy's int range). The length is NumPy's, ``ceil((stop - start) / step)``;
    the values are exact integers for int arguments and an int dtype, else ``np.arange``'s in float64
    rounded once to ``dtype`` (so ``od.arange(0, 1, 0.1)`` is ``np.arange(0, 1, 0.1).astype("float32")``)."""
    op = "arange"
    if stop is None:
        start, stop = 0, start
    a, b, s = _number(op, "start", start), _number(op, "stop", stop), _number(op, "step", step)
    if s == 0:
        raise arg_error(op, "step", step, "a non-zero number")
    if not all(np.isfinite(v) for v in (a, b, s)):
        raise arg_error(op, "start/stop/step", (start, stop, step), "finite numbers")
    ints = all(isinstance(v, int) for v in (a, b, s))
    dt = to_dtype(op, dtype)
    n = max(0, int(np.ceil((b - a) / s))) if not ints else max(0, -((a - b) // s))
    if n > INT_MAX:
        raise arg_error(op, "stop", stop, f"a range of at most {INT_MAX} elements")
    if ints and dt.kind in "iu":
        arr = (a + np.arange(n, dtype=np.int64) * s).astype(dt)
    else:
        arr = np.arange(a, b, s, dtype=np.float64).astype(dt)
    return on_device(op, arr, device)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
             device: DeviceLike = None) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``), as
    ``np.linspace``: computed in float64, rounded once to ``dtype`` (default float32)."""
    op = "linspace"
    a, b = _number(op, "start", start), _number(op, "stop", stop)
    if not _is_int(num) or not 0 <= num <= INT_MAX:
        raise arg_error(op, "num", num, f"an int in [0, {INT_MAX}]")
    if not isinstance(endpoint, (bool, np.bool_)):
        raise arg_error(op, "endpoint", endpoint, "True or False")
    dt = to_dtype(op, dtype)
    arr = np.linspace(float(a), float(b), int(num), endpoint=bool(endpoint), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return on_device(op, arr.astype(dt) if dt.kind != "i" else np.floor(arr).astype(dt), device)


def eye(n: int, m: Optional[int] = None, k: int = 0, dtype: Any = None, device: DeviceLike = None) -> Tensor:
    """The ``n`` x ``m`` (default ``n`` x ``n``) matrix with ones on diagonal ``k`` (0: the main one,
    > 0 above it), zeros elsewhere, as ``np.eye``; dtype default float32."""
    op = "eye"
    for arg, v in (("n", n), ("m", m)):
        if v is not None and not (_is_int(v) and 0 <= v <= INT_MAX):
            raise arg_error(op, arg, v, f"an int in [0, {INT_MAX}]")
    if not _is_int(k):
        raise arg_error(op, "k", k, "an int")
    return on_device(op, np.eye(int(n), None if m is None else int(m), int(k), dtype=to_dtype(op, dtype)), device)
