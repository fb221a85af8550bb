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
from .errors import DeviceError, DeviceMismatchError, DTypeError, InvalidArgumentError
from .ops import OPS, get_schema
from .placement import Placement, PlacementEvent, current_placement, report
from .recording import ACTIVE as _RECORDING
from .registry import registry
from .runtime import DeviceRuntime
from .schema import OpSchema, TensorMeta


class Tensor:
    """An n-dimensional array on a device. Immutable: ops return new tensors.

    ``shape``, ``dtype`` (a NumPy dtype) and ``device`` describe it; ``numpy()`` copies it to the
    host; ``np.asarray(t)`` works; ``+ - * / ** @``, unary ``-``, ``abs()`` and the comparisons
    ``== != < <= > >=`` (bool tensors, elementwise as NumPy) run the matching ops.

    NumPy-like surface: ``.T``, ``.sum/.mean/.max/.min/.argmax/.argmin(axis=None, keepdims=False)``,
    ``.reshape(*shape)``, ``.transpose(*axes)``, ``.flatten()`` (1-D as NumPy's, unlike
    ``od.flatten(x, start_axis=1)``), ``.astype(dtype)`` (the ``cast`` op), ``.item()``, ``.tolist()``;
    ``bool/float/int(t)`` of one element. NumPy functions and ufuncs with an od equivalent
    (`NUMPY_EQUIVALENTS`) return a Tensor on the tensor's device; any other runs in NumPy on host
    copies and returns NumPy results; ``out=`` is refused. DLPack (``__dlpack__``, `from_dlpack`),
    ``pickle`` and ``copy.deepcopy`` keep values, dtype and device.

    Hashing: ``hash(t)`` is by identity (as PyTorch's tensors, unlike NumPy's unhashable arrays), so
    tensors can be dict keys and set members (opdispatch keys them by ``id`` itself). Since ``==`` is
    elementwise, ``t in [u, v]`` compares values and raises NumPy's ambiguity error for more than one
    element: test identity with ``any(t is u for u in seq)``.
    """

    __slots__ = ("_data", "_shape", "_dtype", "_rt", "__weakref__")

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


    # -- indexing (opdispatch.indexing): t[key] as ops, len, iteration; tensors stay immutable --------
    def __getitem__(self, key: Any) -> "Tensor":
        """``t[key]`` with NumPy's rules: ints, slices (any step), ``...``, ``None``, integer arrays,
        lists or int tensors, boolean masks; differentiable (see `opdispatch.indexing`)."""
        return INDEXING["getitem"](self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise INDEXING["setitem_error"](key)

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self) -> Any:
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._shape[0]))

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

    # -- issue 14 protocols (comparisons, methods, NumPy protocols, DLPack, pickle): begin ----------------
    # NumPy-like behaviour; the helpers live in the "NumPy-like protocols" section at the end of this module.

    __hash__ = object.__hash__  # identity (see the class docstring): == is elementwise

    def __eq__(self, other: Any) -> Any:
        return F.equal(*compared(self, other)) if _comparable(other) else NotImplemented

    def __ne__(self, other: Any) -> Any:
        return F.not_equal(*compared(self, other)) if _comparable(other) else NotImplemented

    def __lt__(self, other: Any) -> "Tensor":
        return F.less(*compared(self, other)) if _comparable(other) else NotImplemented

    def __le__(self, other: Any) -> "Tensor":
        return F.less_equal(*compared(self, other)) if _comparable(other) else NotImplemented

    def __gt__(self, other: Any) -> "Tensor":
        return F.greater(*compared(self, other)) if _comparable(other) else NotImplemented

    def __ge__(self, other: Any) -> "Tensor":
        return F.greater_equal(*compared(self, other)) if _comparable(other) else NotImplemented

    def __pow__(self, other: Any) -> "Tensor": return F.pow(self, other)
    def __rpow__(self, other: Any) -> "Tensor": return F.pow(other, self)
    def __abs__(self) -> "Tensor": return F.abs(self)

    def __bool__(self) -> bool:
        return bool(self._scalar("bool"))

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, what: str) -> Any:
        """The one element as a NumPy scalar; NumPy's errors for more (or fewer) elements."""
        if self.size != 1:
            if what == "bool":
                raise ValueError(f"The truth value of a tensor with {self.size} elements (shape {self._shape}) is "
                                 f"ambiguous (as NumPy's); allowed: one element -- reduce first, e.g. "
                                 f"np.any(t) / np.all(t) (host booleans) or od.max(t) > 0")
            raise TypeError(f"{what}(): only a tensor of one element converts to a Python scalar; this one has "
                            f"{self.size} (shape {self._shape}); allowed: size 1, or t.tolist()")
        return self.numpy().reshape(())[()]

    def item(self) -> Any:
        """The one element as a Python scalar (float, int or bool), as NumPy's ``item()``."""
        if self.size != 1:
            raise ValueError(f"item(): can only convert a tensor of size 1 to a Python scalar; this one has "
                             f"{self.size} elements (shape {self._shape}); allowed: size 1, or t.tolist()")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        """The values as nested Python lists (a Python scalar for a 0-d tensor), as NumPy's ``tolist()``."""
        return self.numpy().tolist()

    @property
    def T(self) -> "Tensor":  # noqa: N802 - NumPy's name
        """The axes reversed (``od.transpose(t)``)."""
        return F.transpose(self, axes=None)

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """``od.sum(t, axis, keepdims)`` (int and bool tensors: an int64 count, see `reduce_values`)."""
        return reduce_values("sum", self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """``od.mean(t, axis, keepdims)`` (int and bool tensors: a float mean, see `reduce_values`)."""
        return reduce_values("mean", self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """``od.max(t, axis, keepdims)`` (int and bool tensors too: the result keeps the dtype)."""
        return F.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """``od.min(t, axis, keepdims)`` (int and bool tensors too: the result keeps the dtype)."""
        return F.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: Optional[int] = None, keepdims: bool = False) -> "Tensor":
        """``od.argmax(t, axis, keepdims)`` (int64; None: of the flattened tensor)."""
        return F.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis: Optional[int] = None, keepdims: bool = False) -> "Tensor":
        """``od.argmin(t, axis, keepdims)`` (int64; None: of the flattened tensor)."""
        return F.argmin(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> "Tensor":
        """``od.reshape``: ``t.reshape(2, 3)``, ``t.reshape((2, 3))`` or ``t.reshape(-1)``."""
        return F.reshape(self, shape=_shape_args("reshape", shape))

    def transpose(self, *axes: Any) -> "Tensor":
        """``od.transpose``: ``t.transpose()`` reverses the axes; ``t.transpose(1, 0, 2)`` or
        ``t.transpose((1, 0, 2))`` permutes them."""
        return F.transpose(self, axes=_shape_args("transpose", axes) if axes else None)

    def flatten(self) -> "Tensor":
        """The elements as a 1-D tensor (NumPy's ``flatten``; ``od.flatten(x)`` keeps axis 0, as
        PyTorch's ``nn.Flatten``)."""
        return F.reshape(self, shape=(-1,))

    def astype(self, dtype: Any) -> "Tensor":
        """The values in ``dtype`` (the ``cast`` op: floats to ints truncate toward zero, nonzero is
        True); differentiable float to float. The same tensor when it already has ``dtype``."""
        target = as_dtype(dtype)
        if target == self._dtype:
            return self
        check_device_dtype(self._rt, target)
        return F.cast(self, dtype=target)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _array_function(func, types, args, kwargs)

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: Optional[bool] = None) -> Any:
        """A DLPack capsule of the data: the backend array's own (no copy: NumPy on ``numpy`` devices,
        CuPy on ``cupy`` ones; do not write through it, tensors are immutable), else a host copy
        (``copy=False`` then raises BufferError)."""
        return _dlpack(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        """The DLPack device of what `__dlpack__` exports: the backend array's, or (1, 0) (CPU) for a
        host copy."""
        return _dlpack_device(self)

    def __reduce__(self) -> Any:
        return (_unpickle, (self.numpy(), str(self._rt.device)))

    def __copy__(self) -> "Tensor":
        return make(self._rt.from_numpy(self.numpy(), self._rt.device), self._shape, self._dtype, self._rt)

    def __deepcopy__(self, memo: dict) -> "Tensor":
        return self.__copy__()
    # -- issue 14 protocols: end -----------------------------------------------------------------------


INDEXING: dict[str, Callable[..., Any]] = {}
"""``getitem`` and ``setitem_error`` of `opdispatch.indexing`, which registers them when imported (it
builds on this module, so this module cannot import it)."""

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


def _number_kind(value: Any) -> str:
    """NumPy's kind of a Python number ('b', 'i', 'f'), '' for anything else (NumPy scalars included)."""
    if isinstance(value, np.generic) or not isinstance(value, numbers.Real):
        return ""
    return "b" if isinstance(value, bool) else "i" if isinstance(value, numbers.Integral) else "f"


def compared(a: Any, b: Any) -> tuple[Any, Any]:
    """NumPy's promotion for a bool or int tensor compared with a Python number of a wider kind
    (``mask > 0``, ``labels < 2.5``): the tensor is cast to int64 (an int beside bools) or to float64
    (a float; float32 on a device without float64), so the result is NumPy's. Otherwise a Python
    number takes the tensor's dtype, and tensors of two dtypes still raise."""
    for t, n in ((a, b), (b, a)):
        kind = _number_kind(n)
        if isinstance(t, (Tensor, np.ndarray)) and kind and (t.dtype.kind == "b" and kind in "if" or
                                                             t.dtype.kind in "iu" and kind == "f"):
            wider: np.dtype = np.dtype("int64" if kind == "i" else "float64")
            if isinstance(t, Tensor) and wider not in t._rt.info.dtype_set:
                wider = np.dtype("float32")
            return (t.astype(wider), n) if t is a else (n, t.astype(wider))
    return a, b


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



# == NumPy-like protocols (issue 14): comparisons' operand rule, NumPy's ufuncs and functions, DLPack, pickle ==

_COMPARABLE = (Tensor, np.ndarray, np.generic, numbers.Number, list, tuple)


def _comparable(other: Any) -> bool:
    """Whether ``t == other`` compares elementwise: tensors, arrays, numbers and sequences of them. For
    anything else (None, a string, an object) the comparison returns NotImplemented, so Python falls
    back to identity (``t == None`` is False, ``t in (None, 0)`` works)."""
    return isinstance(other, _COMPARABLE)


def _shape_args(method: str, args: tuple) -> tuple:
    """``(2, 3)`` from ``t.reshape(2, 3)`` or ``t.reshape((2, 3))`` (also a list)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class _NoEquivalent(Exception):
    """A NumPy call that no od op takes as given (an unsupported argument): it runs in NumPy instead."""


def _square(x: Any) -> Tensor:
    return F.mul(x, x)


def _reciprocal(x: Any) -> Tensor:
    return F.div(1.0, x)


def _numpy_compare(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda a, b: fn(*compared(a, b))


_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": add, "subtract": sub, "multiply": mul, "divide": div, "negative": neg, "positive": lambda x: F.mul(x, 1.0),
    "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "tanh": F.tanh, "absolute": F.abs, "fabs": F.abs, "power": F.pow,
    "maximum": F.maximum, "minimum": F.minimum, "square": _square, "reciprocal": _reciprocal, "matmul": F.matmul,
    **{name: _numpy_compare(getattr(F, name)) for name in ("equal", "not_equal", "less", "less_equal", "greater",
                                                           "greater_equal")},
}
"""NumPy ufuncs (by name) with an od equivalent, called as ``np.<name>(...)`` (no other arguments)."""


def _refuse_out(name: str, kwargs: dict) -> None:
    out = kwargs.pop("out", None)
    if out is not None and not (isinstance(out, tuple) and all(o is None for o in out)):
        raise TypeError(f"numpy.{name} with a Tensor: out= is not supported (tensors are immutable); allowed: use "
                        f"the returned value (y = np.{name}(t)), or pass NumPy arrays to compute into out=")


def _to_host(value: Any) -> Any:
    """``value`` with every Tensor (also inside lists and tuples) replaced by its host copy."""
    if isinstance(value, Tensor):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host(v) for v in value)
    return value


def _non_float_tensor(values: Any) -> bool:
    for v in values:
        if isinstance(v, Tensor) and v._dtype.kind != "f":
            return True
        if isinstance(v, (list, tuple)) and _non_float_tensor(v):
            return True
    return False


def _array_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: an od op for the ufuncs of `_UFUNCS` called plainly; NumPy on host
    copies for anything else (another ufunc, a method such as ``np.add.reduce``, or ``dtype=``/``where=``),
    or for integer and bool tensors an od op refuses (od's elementwise math is float)."""
    name = getattr(ufunc, "__name__", str(ufunc))
    _refuse_out(name if method == "__call__" else f"{name}.{method}", kwargs)
    fn = _UFUNCS.get(name) if method == "__call__" and not kwargs else None
    if fn is not None:
        try:
            return fn(*inputs)
        except DTypeError:
            if not _non_float_tensor(inputs):
                raise
    return getattr(ufunc, method)(*_to_host(inputs), **kwargs)


def _plain(kwargs: dict, *names: str) -> None:
    """Raise `_NoEquivalent` when any of ``names`` was given (NumPy arguments no od op takes)."""
    if any(n in kwargs for n in names):
        raise _NoEquivalent


def _reduction(op: str) -> Callable[..., Any]:
    def handler(a: Any, axis: Any = None, *rest: Any, keepdims: bool = False, **kwargs: Any) -> Any:
        if rest:
            raise _NoEquivalent
        _plain(kwargs, "dtype", "initial", "where")
        if op in ("sum", "mean"):  # int and bool tensors count, as t.sum() / t.mean() do
            return reduce_values(op, a, axis, keepdims)
        return getattr(F, op)(a, axis=axis, keepdims=keepdims)
    return handler


def _arg_reduction(op: str) -> Callable[..., Any]:
    def handler(a: Any, axis: Any = None, *rest: Any, keepdims: bool = False) -> Any:
        if rest:
            raise _NoEquivalent
        return getattr(F, op)(a, axis=axis, keepdims=keepdims)
    return handler


def _np_concatenate(arrays: Any, axis: Any = 0, *rest: Any, **kwargs: Any) -> Any:
    if axis is None or rest:
        raise _NoEquivalent
    _plain(kwargs, "dtype")
    return F.concat(list(arrays), axis=axis)


def _np_stack(arrays: Any, axis: int = 0, *rest: Any, **kwargs: Any) -> Any:
    if rest:
        raise _NoEquivalent
    _plain(kwargs, "dtype")
    return F.concat([F.unsqueeze(a, axis=axis) for a in arrays], axis=axis)


def _np_reshape(a: Any, shape: Any = None, order: str = "C", **kwargs: Any) -> Any:
    shape = kwargs.pop("newshape", shape)
    if order != "C" or kwargs.get("copy") is False:
        raise _NoEquivalent
    return F.reshape(a, shape=shape)


def _np_transpose(a: Any, axes: Any = None) -> Any:
    return F.transpose(a, axes=axes)


def _np_where(condition: Any, *xy: Any) -> Any:
    if len(xy) != 2:
        raise _NoEquivalent  # np.where(cond): the indices, on the host
    return F.where(condition, *xy)


def _np_clip(a: Any, a_min: Any = None, a_max: Any = None, *rest: Any, **kwargs: Any) -> Any:
    lo, hi = kwargs.pop("min", a_min), kwargs.pop("max", a_max)
    if rest or kwargs:
        raise _NoEquivalent
    if all(v is None or isinstance(v, numbers.Real) for v in (lo, hi)):
        return F.clip(a, min=lo, max=hi)
    out = a if lo is None else F.maximum(a, lo)
    return out if hi is None else F.minimum(out, hi)


def _np_squeeze(a: Any, axis: Any = None) -> Any:
    return F.squeeze(a, axis=axis)


def _np_expand_dims(a: Any, axis: Any) -> Any:
    return F.unsqueeze(a, axis=axis)


def _np_ravel(a: Any, order: str = "C") -> Any:
    if order != "C":
        raise _NoEquivalent
    return F.reshape(a, shape=(-1,))


def _np_shape(a: Any) -> Any:
    return a.shape if isinstance(a, Tensor) else np.shape(a)


def _np_ndim(a: Any) -> Any:
    return a.ndim if isinstance(a, Tensor) else np.ndim(a)


def _np_size(a: Any, axis: Optional[int] = None) -> Any:
    if not isinstance(a, Tensor):
        raise _NoEquivalent
    return a.size if axis is None else a.shape[axis]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": _reduction("sum"), "mean": _reduction("mean"), "max": _reduction("max"), "amax": _reduction("max"),
    "min": _reduction("min"), "amin": _reduction("min"), "argmax": _arg_reduction("argmax"),
    "argmin": _arg_reduction("argmin"), "concatenate": _np_concatenate, "concat": _np_concatenate,
    "stack": _np_stack, "reshape": _np_reshape, "transpose": _np_transpose, "where": _np_where, "clip": _np_clip,
    "squeeze": _np_squeeze, "expand_dims": _np_expand_dims, "ravel": _np_ravel, "shape": _np_shape,
    "ndim": _np_ndim, "size": _np_size,
}
"""NumPy functions (``numpy.<name>``, by name) with an od equivalent."""

NUMPY_EQUIVALENTS: tuple[str, ...] = tuple(sorted(f"np.{n}" for n in set(_UFUNCS) | set(_FUNCTIONS)))
"""The NumPy ufuncs and functions that return a Tensor (on the tensor's device) when given one. Called
with arguments no od op takes (``dtype=``, ``where=``, ``np.where(cond)``, ``axis=None`` of
concatenate...), or on integer or bool tensors an od op refuses, they run in NumPy like every other
NumPy function: on host copies of the tensors (``np.asarray(t)``), returning NumPy results. ``out=``
is refused (TypeError); inside ``od.function`` a host computation raises (tensor values are unknown)."""


def _array_function(func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: the od equivalent of ``func`` (`_FUNCTIONS`), else NumPy on host copies."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    name = getattr(func, "__name__", "")
    module = getattr(func, "__module__", "") or ""
    handler = _FUNCTIONS.get(name) if module.split(".")[0] == "numpy" and module.count(".") <= 2 else None
    kwargs = dict(kwargs)
    _refuse_out(name, kwargs)
    if handler is not None:
        try:
            return handler(*args, **kwargs)
        except _NoEquivalent:
            pass
        except DTypeError:
            if not _non_float_tensor(args):
                raise
    return func(*_to_host(args), **{k: _to_host(v) for k, v in kwargs.items()})


# -- DLPack --------------------------------------------------------------------------------------------------

_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_ROCM = 1, 2, 3, 10


def _dlpack(t: Tensor, stream: Any, max_version: Any, dl_device: Any, copy: Optional[bool]) -> Any:
    data = t.data  # a traced tensor raises here: it has no data
    exporter = getattr(data, "__dlpack__", None)
    given = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                               ("copy", copy)) if v is not None}
    if exporter is not None:
        try:
            return exporter(**given)
        except TypeError:  # an exporter older than DLPack 1.0's keywords
            return exporter(**({"stream": stream} if stream is not None else {}))
    if copy is False:
        raise BufferError(f"__dlpack__: the memory of {t.device} cannot be shared through DLPack (its backend "
                          f"array {type(data).__name__} does not export it); allowed: copy=None or True, which "
                          f"exports a host (CPU) copy")
    host: Any = t.numpy()
    given.pop("copy", None)
    return host.__dlpack__(**given)


def _dlpack_device(t: Tensor) -> tuple[int, int]:
    exporter = getattr(t.data, "__dlpack_device__", None)
    if exporter is None:
        return (_DL_CPU, 0)  # what __dlpack__ exports then: a host copy
    kind, index = exporter()
    return (int(kind), int(index))


def from_dlpack(obj: Any, device: Union[str, Device, None] = None) -> Tensor:
    """A tensor of the data of ``obj``, any DLPack exporter (a NumPy or CuPy array, a PyTorch tensor, a
    Tensor), without a copy where the memory allows: CPU memory becomes a ``numpy:0`` tensor, CUDA
    memory of GPU N a ``cupy:N`` one (C-contiguous data; others are copied). The tensor then shares
    the exporter's memory: do not write to it afterwards (tensors are immutable). ``device`` puts the
    tensor elsewhere (a copy when it is not where the memory lives)."""
    if isinstance(obj, Tensor):
        return obj if device is None else obj.to(device)
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise InvalidArgumentError(f"from_dlpack: argument 'obj' got {type(obj).__name__}; allowed: an object with "
                                   f"__dlpack__ and __dlpack_device__ (a NumPy or CuPy array, a torch tensor...); "
                                   f"use od.tensor(data) for other array-likes")
    kind, index = (int(v) for v in obj.__dlpack_device__())
    if kind in (_DL_CPU, _DL_CUDA_HOST):
        home = Device("numpy:0")
        arr: Any = np.from_dlpack(obj)
    elif kind in (_DL_CUDA, _DL_ROCM):
        home = Device(f"cupy:{index}")
        registry().runtime(home)  # a DeviceError when there is no such device here
        import importlib

        arr = importlib.import_module("cupy").from_dlpack(obj)
    else:
        raise DeviceError(f"from_dlpack: the data lives on DLPack device type {kind} (index {index}); allowed: CPU "
                          f"memory (type 1 or 3: numpy:0) or CUDA / ROCm memory (type 2 or 10: cupy:N)")
    dtype = np.dtype(arr.dtype)
    if dtype.kind not in "fiub" or (dtype.kind == "f" and dtype not in FLOAT_DTYPES) or not dtype.isnative:
        floats = ", ".join(d.name for d in FLOAT_DTYPES)
        raise DTypeError(f"from_dlpack: the data has dtype {dtype}; allowed: {floats}, integer or bool data in "
                         f"native byte order")
    target = home if device is None else Device(device)
    rt = registry().runtime(target)
    check_device_dtype(rt, dtype)
    shape = tuple(int(d) for d in arr.shape)
    if target == home and rt.plain_arrays and isinstance(arr, rt.result_types) and arr.flags.c_contiguous:
        return make(arr, shape, dtype, rt)  # shared memory, no copy
    host = arr if isinstance(arr, np.ndarray) else arr.get()
    return make(rt.from_numpy(np.ascontiguousarray(host), rt.device), shape, dtype, rt)


# -- pickle --------------------------------------------------------------------------------------------------

def unpickle_tensor(values: np.ndarray, device: str) -> Tensor:
    """Rebuild a pickled tensor on the device it was saved from, or raise a `DeviceError` naming it when
    that device is not available here (no silent move to another device)."""
    try:
        rt = registry().runtime(Device(device))
    except DeviceError as exc:
        raise DeviceError(f"unpickling a {values.dtype.name}{list(values.shape)} tensor saved on {device}: that "
                          f"device is not available here ({exc}); allowed: unpickle where {device} exists, or "
                          f"pickle t.numpy() (plain NumPy data) and rebuild it with od.tensor(values, device=...)"
                          ) from None
    check_device_dtype(rt, values.dtype)
    return make(rt.from_numpy(values, rt.device), values.shape, values.dtype, rt)


_unpickle = unpickle_tensor


def reduce_values(op: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    """``sum`` or ``mean`` of ``x``; for an int or bool tensor as NumPy gives them (``(pred == y).sum()``
    counts, ``.mean()`` is a fraction): the values are cast to float64 (float32 where the device has
    no float64), reduced with the float op, and a sum is cast back to int64 (exact below 2**53, or
    2**24 in float32)."""
    fn = F.sum if op == "sum" else F.mean
    if not isinstance(x, Tensor) or x._dtype.kind == "f":
        return fn(x, axis=axis, keepdims=keepdims)
    wide = "float64" if np.dtype("float64") in x._rt.info.dtype_set else "float32"
    out = fn(F.cast(x, dtype=wide), axis=axis, keepdims=keepdims)
    return F.cast(out, dtype="int64") if op == "sum" else out
