"""The eager frontend: `Tensor`, running an op eagerly (`run`), the element-wise fast paths and
``F``, the namespace holding the function of every op.

Order of work for every call: normalise attributes, gather the inputs on one device, infer shapes
and dtypes with the op's schema (so a bad call fails before any kernel runs and changes nothing),
choose what runs it on the device (`opdispatch.dispatch.choose`: a kernel, or the op's
decomposition, which then runs here op by op), run it, wrap the results. Element-wise ops take a
fast path when their inputs are plain same-device tensors: the device's kernel directly.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import recording
from .device import Device
from .dispatch import check_results, choose, execute, kernel_error
from .dtypes import FLOAT_DTYPES, as_dtype
from .fpstate import quiet, restore
from .errors import DeviceMismatchError, DTypeError, InvalidArgumentError
from .ops import OPS, get_schema
from .placement import Placement, PlacementEvent, current_placement, report
from .recording import ACTIVE as _RECORDING
from .registry import registry
from .runtime import DeviceRuntime
from .schema import OpSchema, TensorMeta


class Tensor:
    """An n-dimensional array on a device. Immutable: ops return new tensors.

    ``shape``, ``dtype`` (a NumPy dtype) and ``device`` describe it; ``numpy()`` copies it to the
    host; ``np.asarray(t)`` works; ``+ - * / @`` and unary ``-`` run the matching ops.
    """

    __slots__ = ("_data", "_shape", "_dtype", "_rt", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to our reflected operators: ndarray + Tensor -> Tensor

    _data: Any
    _shape: tuple[int, ...]
    _dtype: np.dtype
    _rt: DeviceRuntime

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("create tensors with od.tensor(data, dtype=None, device=None)")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """The element type, a NumPy dtype."""
        return self._dtype

    @property
    def device(self) -> Device:
        """The device holding the data."""
        return self._rt.device

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self._shape:
            n *= d
        return n

    @property
    def data(self) -> Any:
        """The backend's own array object (a NumPy array on ``numpy`` devices). Do not mutate it."""
        return self._data

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data on the host."""
        return self._rt.to_numpy(self._data, self._rt.device)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def to(self, device: Union[str, Device]) -> "Tensor":
        """This tensor's data on ``device`` (the same tensor when it is already there)."""
        rt = registry().runtime(Device(device))
        if rt is self._rt:
            return self
        check_device_dtype(rt, self._dtype)
        return make(rt.from_numpy(self.numpy(), rt.device), self._shape, self._dtype, rt)

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self._dtype.name}, device={self._rt.device})"

    def __str__(self) -> str:
        return f"{self.numpy()} @ {self._rt.device}"

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    # operators: the op functions defined below (late-bound names of this module)
    def __add__(self, other: Any) -> "Tensor": return add(self, other)
    def __radd__(self, other: Any) -> "Tensor": return add(other, self)
    def __sub__(self, other: Any) -> "Tensor": return sub(self, other)
    def __rsub__(self, other: Any) -> "Tensor": return sub(other, self)
    def __mul__(self, other: Any) -> "Tensor": return mul(self, other)
    def __rmul__(self, other: Any) -> "Tensor": return mul(other, self)
    def __truediv__(self, other: Any) -> "Tensor": return div(self, other)
    def __rtruediv__(self, other: Any) -> "Tensor": return div(other, self)
    def __matmul__(self, other: Any) -> "Tensor": return F.matmul(self, other)
    def __rmatmul__(self, other: Any) -> "Tensor": return F.matmul(other, self)
    def __neg__(self) -> "Tensor": return neg(self)


_new = object.__new__


def make(data: Any, shape: tuple[int, ...], dtype: np.dtype, rt: Any) -> Tensor:
    """Wrap a backend array whose shape and dtype are already known (no checks: hot path)."""
    t = _new(Tensor)
    t._data = data
    t._shape = shape
    t._dtype = dtype
    t._rt = rt
    return t


def check_device_dtype(rt: Any, dtype: np.dtype, op: str = "tensor") -> None:
    """Raise `DTypeError` when a float ``dtype`` is not supported by the device of ``rt`` (every
    device stores integer and bool data; float16 only where its backend declares it)."""
    if dtype.kind == "f" and dtype not in rt.info.dtype_set:
        floats = sorted(d.name for d in rt.info.dtype_set)
        hint = "" if not floats else f" (convert with dtype={floats[-1 if dtype.itemsize > 4 else 0]!r})"
        raise DTypeError(f"{op}: dtype {dtype.name} is not supported on device {rt.device}; allowed there: "
                         f"{', '.join(floats)} floats, integer and bool data{hint}")


DEFAULT_FLOAT = np.dtype("float32")
"""The dtype of Python floats (and sequences of them) given no ``dtype``, as in PyTorch, JAX and TensorFlow."""


def _default_float(arr: np.ndarray, op: str, arg: str) -> np.ndarray:
    """float64 ``arr`` (from Python floats) as `DEFAULT_FLOAT`; a `DTypeError` where a finite value
    would overflow to inf (rather than a silent inf)."""
    with np.errstate(over="ignore"):
        out = arr.astype(DEFAULT_FLOAT)
    if arr.size and not np.array_equal(np.isfinite(out), np.isfinite(arr)):
        big = float(arr[np.isfinite(arr) & ~np.isfinite(out)].flat[0])
        raise DTypeError(f"{op}: argument {arg!r} got the Python float {big!r}, out of range for "
                         f"{DEFAULT_FLOAT.name} (the dtype of Python floats); allowed: pass dtype='float64'")
    return out


def host_array(data: Any, dtype: Any = None, op: str = "tensor", arg: str = "data") -> np.ndarray:
    """``data`` as a NumPy array of numbers (floats, ints or bools) in native byte order, or a `DTypeError`.

    Without ``dtype``: NumPy arrays and NumPy scalars keep their dtype; anything else (Python numbers,
    nested lists or tuples) takes NumPy's choice except that float64 becomes `DEFAULT_FLOAT` (float32):
    ``1.0`` and ``[1.0, 2]`` are float32, ``1`` is int64, ``True`` is bool."""
    try:
        arr = np.asarray(data, dtype=None if dtype is None else as_dtype(dtype))
    except OverflowError as exc:
        raise DTypeError(f"{op}: argument {arg!r} got a number out of range for "
                         f"{'any NumPy dtype' if dtype is None else as_dtype(dtype).name} ({exc}); "
                         f"allowed: numbers that fit the input dtype") from None
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{op}: argument {arg!r} got {type(data).__name__} that is not array-like ({exc}); "
                         f"allowed: a tensor, a NumPy array, a number or a nested sequence of numbers") from None
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = _default_float(arr, op, arg)
    if not arr.dtype.isnative:  # big-endian data from a file: backends receive native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind not in "fiub" or (arr.dtype.kind == "f" and arr.dtype not in FLOAT_DTYPES):
        raise DTypeError(f"{op}: argument {arg!r} got dtype {arr.dtype}; allowed: "
                         f"{', '.join(d.name for d in FLOAT_DTYPES)}, integer or bool data")
    return arr


def tensor(data: Any, dtype: Any = None, device: Union[str, Device, None] = None) -> Tensor:
    """Build a tensor from array-like ``data`` (copied) on ``device`` (default: the current device).

    ``dtype`` defaults to the data's own for NumPy arrays and scalars; Python floats and sequences of
    them give float32, Python ints int64, bools bool (see `host_array`).
    """
    rt = registry().runtime(current_placement().device if device is None else Device(device))
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = host_array(data, dtype)
    check_device_dtype(rt, arr.dtype)
    return make(rt.from_numpy(arr, rt.device), arr.shape, arr.dtype, rt)


# -- eager execution -----------------------------------------------------------------------------

def _is_weak_scalar(value: Any) -> bool:
    return isinstance(value, (numbers.Number, bool)) and not isinstance(value, np.generic)


def _value_dtype(specs: Sequence[Any], args: Sequence[Any]) -> Optional[np.dtype]:
    """The dtype of the first tensor or array passed for a ``'value'`` input (what Python numbers
    beside it take), or None."""
    for spec, a in zip(specs, args):
        if spec.kind == "value" and isinstance(a, (Tensor, np.ndarray)):
            return a.dtype
    return None


def _weak_dtype(value: Any, dtype: Optional[np.dtype]) -> Optional[np.dtype]:
    """The dtype a Python number takes beside a value tensor of ``dtype`` (NumPy 2's weak scalars:
    ``int_tensor == 3`` compares int32 with int32, ``x > 0`` float with float); None (NumPy's own
    choice) where the number's kind does not fit the tensor's (2.5 beside an int tensor, 3 beside
    a bool one), so shape inference reports the mismatch."""
    if dtype is None:
        return None
    if isinstance(value, bool):
        return dtype
    if isinstance(value, numbers.Integral):
        return dtype if dtype.kind in "fiu" else None
    if isinstance(value, numbers.Real):
        return dtype if dtype.kind == "f" else None
    return None


def gather(schema: OpSchema, args: Sequence[Any], placement: Placement
           ) -> tuple[DeviceRuntime, list[Optional[Tensor]], list[Optional[TensorMeta]]]:
    """Bring every input (flat, see `OpSchema.flatten_args`) onto one device: return its runtime, the
    input tensors and their metas."""
    op = schema.name
    specs = schema.input_specs(len(args))
    tensors = [(spec.name, a) for spec, a in zip(specs, args) if isinstance(a, Tensor)]
    if not tensors:
        rt = registry().runtime(placement.device)
    else:
        rt = tensors[0][1]._rt
        for _, t in tensors[1:]:
            if t._rt.device != rt.device:
                rt = _resolve_mismatch(op, tensors, placement)
                break
    float_dtype = next((t._dtype for _, t in tensors if t._dtype.kind == "f"), None)
    if float_dtype is None:  # like NumPy: Python scalars take the dtype of a float array input
        float_dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
    value_dtype = _value_dtype(specs, args) if schema.takes_values else None
    inputs: list[Optional[Tensor]] = []
    metas: list[Optional[TensorMeta]] = []
    for spec, value in zip(specs, args):
        if value is None:
            if not spec.optional:
                raise InvalidArgumentError(f"{op}: argument {spec.name!r} got None; allowed: a tensor or array-like")
            inputs.append(None)
            metas.append(None)
            continue
        if not isinstance(value, Tensor):
            dtype = None
            if _is_weak_scalar(value):
                dtype = float_dtype if spec.kind == "float" else _weak_dtype(value, value_dtype) \
                    if spec.kind == "value" else np.dtype("int64") if spec.kind == "int" else None
            arr = host_array(value, dtype, op, spec.name)
            value = make(rt.from_numpy(arr, rt.device), arr.shape, arr.dtype, rt)
        elif value._rt is not rt:
            value = value.to(rt.device) if value._rt.device != rt.device else value
        inputs.append(value)
        metas.append(TensorMeta(value._shape, value._dtype))
    return rt, inputs, metas


def _resolve_mismatch(op: str, tensors: list, placement: Placement) -> DeviceRuntime:
    devices: dict[Device, str] = {}
    for name, t in tensors:
        devices.setdefault(t._rt.device, name)
    if placement.fallback == "error":
        listing = ", ".join(f"{name!r} on {dev}" for dev, name in devices.items())
        raise DeviceMismatchError(f"{op}: inputs live on different devices ({listing}); allowed: every input on "
                                  f"one device -- move one with .to(device), or allow copies with "
                                  f"od.device(None, fallback='warn')")
    target = placement.device if placement.device in devices else tensors[0][1]._rt.device
    moved = [f"{name!r} from {dev}" for dev, name in devices.items() if dev != target]
    report(placement, PlacementEvent(op, target, target, f"copied {', '.join(moved)} to {target}"), stacklevel=5)
    return registry().runtime(target)


def run(schema: OpSchema, args: Sequence[Any], attrs: dict) -> Any:
    """Run op ``schema`` eagerly on its flat inputs ``args`` (tensors, array-likes or None) with user
    ``attrs``. Returns a `Tensor`, or a tuple of them for ops with several outputs.

    Where the device has no kernel for the call but can run the op's decomposition, the
    decomposition runs instead, op by op (so a gradient tape or a graph tracer sees those ops)."""
    placement = current_placement()
    nattrs = schema.normalize(attrs) if schema.attrs else attrs
    rt, inputs, metas = gather(schema, args, placement)
    outs, kattrs = schema.infer(schema.name, metas, nattrs)
    choice = choose(rt, schema, metas, kattrs, outs[0].dtype)
    if choice.decompose:
        with recording.decomposing(schema.name):
            return schema.decomposition.fn(F, *inputs, **kattrs)  # type: ignore[union-attr]
    recorders = recording.active()
    tracer = next((r for r in recorders if getattr(r, "symbolic", False)), None) if recorders else None
    if tracer is not None:  # a graph tracer: symbolic outputs, no kernel runs (placement decides at run time)
        tensors = tracer.outputs(schema, rt, inputs, kattrs, outs, placement)
    else:
        datas = [None if t is None else t._data for t in inputs]
        rt, results = execute(schema, choice, rt, datas, metas, outs, kattrs, placement)
        tensors = tuple(make(r, m.shape, m.dtype, rt) for r, m in zip(results, outs))
    for recorder in recorders:
        recorder.record(schema, inputs, kattrs, tensors)
    return tensors[0] if len(tensors) == 1 else tensors


# -- op functions: the generic one, and the element-wise fast paths ------------------------------------

def _named(fn: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = "opdispatch"
    return fn


def op_function(schema: OpSchema) -> Callable[..., Any]:
    """The generic function of an op: inputs positional (a variadic one as a sequence; absent
    trailing optional inputs may be left out), then attributes, positional in the schema's order
    after every input, or as keywords."""
    n_inputs, names = len(schema.inputs), schema.attr_names

    def call(*args: Any, **attrs: Any) -> Any:
        if len(args) > n_inputs:
            extra = args[n_inputs:]
            if len(extra) > len(names) or any(n in attrs for n in names[:len(extra)]):
                raise InvalidArgumentError(f"{schema.name}: got {len(args)} positional argument(s); allowed: the "
                                           f"inputs ({', '.join(i.name for i in schema.inputs)}), then the "
                                           f"attributes ({', '.join(names)}) once each")
            attrs = dict(zip(names, extra), **attrs)
            args = args[:n_inputs]
        return run(schema, schema.flatten_args(args), attrs)

    return _named(call, schema.name, schema.doc)


_NO_ATTRS: dict = {}


_MISSING = object()
FAST_CACHE_LIMIT = 4096  # fast-path signatures remembered per device table


def _fast_kernel(rt: DeviceRuntime, schema: OpSchema, key: tuple, metas: tuple,
                 dtype: np.dtype) -> Optional[Callable[..., Any]]:
    """The kernel for a conditional (``supports()``) winner, decided once per fast-path signature
    ``key``; None when the call needs general dispatch (no kernel, a decomposition, a fallback)."""
    table = rt.table
    fn = table.fast_checked.get(key, _MISSING)
    if fn is _MISSING:
        fn = choose(rt, schema, metas, _NO_ATTRS, dtype).fn
        if len(table.fast_checked) >= FAST_CACHE_LIMIT:
            table.fast_checked.clear()
        table.fast_checked[key] = fn
    return fn


def _provider_of(rt: DeviceRuntime, op: str, fn: Callable[..., Any]) -> str:
    """The provider (or backend) whose kernel of ``op`` on ``rt`` is ``fn`` (for error messages)."""
    return next((e.provider for e in rt.candidates.get(op, ()) if e.kernel.fn is fn), "")


def _fast_call(rt: DeviceRuntime, name: str, fn: Callable[..., Any], args: tuple, shape: tuple,
               dtype: np.dtype) -> Tensor:
    """Run a fast-path kernel (NumPy's floating-point errors off) and wrap its result, which must be a
    backend array of ``shape`` and ``dtype`` (else the `KernelError` of `check_results`)."""
    token = quiet()
    try:
        out = fn(*args)
    except BaseException as exc:
        raise kernel_error(name, rt, exc, _provider_of(rt, name, fn))  # noqa: B904 - it sets the cause
    finally:
        restore(token)
    try:
        ok = rt.plain_arrays and isinstance(out, rt.result_types) and out.shape == shape and out.dtype == dtype
    except Exception:
        ok = False
    if not ok:
        out = check_results(name, rt, _provider_of(rt, name, fn), out, [TensorMeta(shape, dtype)])[0]
    return make(out, shape, dtype, rt)


def unary_function(name: str) -> Callable[[Any], Tensor]:
    """The function of element-wise unary op ``name``, with the fast path."""
    schema = OPS[name]

    def op(x: Any) -> Tensor:
        if type(x) is Tensor and not _RECORDING[0]:
            rt = x._rt
            fn = rt.fast.get((name, x._dtype))
            if fn is None and x._dtype in rt.info.dtype_set:
                fn = _fast_kernel(rt, schema, (name, x._shape, x._dtype), (TensorMeta(x._shape, x._dtype),),
                                  x._dtype)
            if fn is not None:
                return _fast_call(rt, name, fn, (x._data,), x._shape, x._dtype)
        return run(schema, (x,), _NO_ATTRS)

    return _named(op, name, f"Element-wise {schema.doc}.")


_SCALAR_LIMIT = 2**53  # Python ints below this convert to floats exactly, as the general path converts them


def _weak_scalar(value: Any) -> bool:
    kind = type(value)
    return kind is float or (kind is int and -_SCALAR_LIMIT < value < _SCALAR_LIMIT)


def binary_function(name: str) -> Callable[[Any, Any], Tensor]:
    """The function of element-wise binary op ``name``, with the fast paths (two tensors of one
    shape, or a float tensor and a Python number)."""
    schema = OPS[name]

    def op(a: Any, b: Any) -> Tensor:
        if not _RECORDING[0]:
            if type(a) is Tensor and type(b) is Tensor:
                rt = a._rt
                if rt is b._rt and a._dtype is b._dtype and a._shape == b._shape:
                    fn = rt.fast.get((name, a._dtype))
                    if fn is None and a._dtype in rt.info.dtype_set:
                        meta = TensorMeta(a._shape, a._dtype)
                        fn = _fast_kernel(rt, schema, (name, a._shape, a._dtype), (meta, meta), a._dtype)
                    if fn is not None:
                        return _fast_call(rt, name, fn, (a._data, b._data), a._shape, a._dtype)
            elif type(a) is Tensor and _weak_scalar(b) or type(b) is Tensor and _weak_scalar(a):
                # tensor with a Python number: the number takes the tensor's float dtype (a 0-d array
                # broadcast by the kernel), exactly what the general path does after validation
                t = a if type(a) is Tensor else b
                rt = t._rt
                fn = rt.fast.get((name, t._dtype)) if t._dtype.kind == "f" else None
                if fn is None and t._dtype.kind == "f" and t._dtype in rt.info.dtype_set:
                    metas = (TensorMeta(t._shape, t._dtype), TensorMeta((), t._dtype))
                    fn = _fast_kernel(rt, schema, (name, t._shape, t._dtype, t is a), metas if t is a else metas[::-1],
                                      t._dtype)
                if fn is not None:
                    s = rt.from_numpy(np.asarray(b if t is a else a, dtype=t._dtype), rt.device)
                    return _fast_call(rt, name, fn, (t._data, s) if t is a else (s, t._data), t._shape, t._dtype)
        return run(schema, (a, b), _NO_ATTRS)

    return _named(op, name, f"Element-wise {schema.doc}.")


class OpFunctions:
    """``F``: the function of every op by name (``F.conv2d(x, w, stride=2)``,
    ``F.conv2d_backward_input(dy, w, input_shape=..., ...)``), plus ``F.tensor``. Gradient rules and
    decompositions are written with it. Element-wise ops are their fast-path functions."""

    tensor = staticmethod(tensor)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        schema = get_schema(name)
        fn = op_function(schema)
        setattr(self, name, fn)
        return fn

    def __dir__(self) -> list[str]:
        return sorted(set(OPS) | {"tensor"})


F = OpFunctions()
for _name, _schema in OPS.items():
    if _schema.family == "elementwise" and not _schema.attrs and len(_schema.inputs) in (1, 2) \
            and not _name.endswith("_backward"):
        setattr(F, _name, (unary_function if len(_schema.inputs) == 1 else binary_function)(_name))

add: Callable[[Any, Any], Tensor] = F.add
sub: Callable[[Any, Any], Tensor] = F.sub
mul: Callable[[Any, Any], Tensor] = F.mul
div: Callable[[Any, Any], Tensor] = F.div
neg: Callable[[Any], Tensor] = F.neg

