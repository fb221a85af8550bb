"""The built-in, hidden ``reference`` backend: every op's float64 reference (`opdispatch.reference`)
as a device, ``reference:0``.

It is a plugin written like any other, registered by the core itself. Being ``hidden``, it is not
listed by ``od.devices()`` (pass ``hidden=True``) and never chosen as a fallback, but tensors can be
made on it and every op runs there: computed in float64 and rounded once to the input's dtype, it
is the conformance suite's oracle (gradients included: the VJP rules run on it). Slow by design.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .backend import BackendInfo, DeviceInfo, Kernel
from .dtypes import FLOAT_DTYPES
from .hookspecs import hookimpl
from .ops import OPS

NAME = "reference"


OWN_DTYPE = frozenset({"cast"})
"""Ops whose result dtype is an attribute: their references already return it (not rounded)."""


def _rounded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its float64 results rounded to the dtype of the first float input."""
    if name in OWN_DTYPE:
        return fn

    def kernel(*arrays: Any, **attrs: Any) -> Any:
        dtype = next((a.dtype for a in arrays if a is not None and a.dtype.kind == "f"), np.dtype("float64"))
        out = fn(*arrays, **attrs)
        if isinstance(out, tuple):
            return tuple(_round(o, dtype) for o in out)
        return _round(out, dtype)

    kernel.__name__ = f"reference_{name}"
    return kernel


def _round(out: Any, dtype: np.dtype) -> np.ndarray:
    """A float result rounded to ``dtype``; integer and bool results (comparisons, indices) as they are."""
    out = np.asarray(out)
    return out.astype(dtype) if out.dtype.kind == "f" else out


VALUE_DTYPES = ("int32", "int64", "bool")
"""The integer and bool dtypes the reference kernels handle besides the floats."""


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name=NAME, version="float64", description="the float64 reference of every op (an oracle)",
                       hidden=True, array_types=(np.ndarray, np.generic), plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="float64 reference (hidden)", dtypes=tuple(d.name for d in FLOAT_DTYPES))]


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    dtypes = tuple(d.name for d in FLOAT_DTYPES) + VALUE_DTYPES
    return [Kernel(name, _rounded(name, schema.reference), dtypes=dtypes) for name, schema in OPS.items()]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True)


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
