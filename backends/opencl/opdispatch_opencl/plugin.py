"""The plugin module named by this distribution's ``opdispatch.backends`` entry point.

Every OpenCL device becomes ``opencl:N`` (stable order, see `runtime.probe`). Nothing here imports
pyopencl at module import: the device probe and the kernels do, so a machine without OpenCL
gets an "unavailable" backend with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, BackendUnavailable, DeviceInfo, Kernel, float16_kernels

from . import __version__, compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce
from .arrays import MAX_RANK, CLArray
from .errors import op_scope
from .runtime import MAX_ELEMENTS

DTYPES = ("float32", "float64")
FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS`` (none imports pyopencl)
and, for ops that compute in other dtypes than `DTYPES` (int, bool), those in a ``DTYPES`` dict by op."""


def _pyopencl_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyopencl")
    except Exception:
        return "not installed"


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="opencl", version=f"{__version__} (pyopencl {_pyopencl_version()})",
                       description="OpenCL devices (PoCL on CPUs, vendor drivers on GPUs)", array_types=(CLArray,),
                       plugin_api=1)


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    from .runtime import device_dtypes, driver_facts, probe, rejected

    try:
        found = probe()
    except ImportError as exc:
        raise BackendUnavailable(f"pyopencl is not importable ({exc}); install opdispatch-opencl[pocl]") from exc
    except Exception as exc:  # pyopencl's LogicError/RuntimeError: no ICD, no platform
        raise BackendUnavailable(f"no OpenCL platform found ({type(exc).__name__}: {exc}); install a vendor "
                                 f"driver or PoCL (pip install 'opdispatch-opencl[pocl]')") from exc
    if not found:
        broken = rejected()
        if broken:
            raise BackendUnavailable(
                "no OpenCL device can compile kernels: " + "; ".join(broken) + ". PoCL's LLVM may not know this "
                "CPU; a PoCL built for it helps (on Debian or Ubuntu: apt-get install pocl-opencl-icd)")
        raise BackendUnavailable("the OpenCL platforms expose no device")
    return [DeviceInfo(index=i, name=f"{d.name.strip()} ({p.name.strip()}; float16 computed in float32)",
                       dtypes=device_dtypes(d), driver=driver_facts(p, d))
            for i, (p, d) in enumerate(found)]


def all_kernels() -> dict[str, Any]:
    """Every op's kernel function, by op name."""
    table: dict[str, Any] = {}
    for module in FAMILIES:
        table.update(module.KERNELS)
    return table


VIEW_OPS = ("reshape", "flatten")  # views of the same buffer: no strided kernel, no rank limit


def within_limits(metas: Any, attrs: dict) -> Optional[str]:
    """The kernels' declared limits (checked by dispatch before a call, so a fallback policy can
    route around them): 32-bit element counts and tensors of rank <= `MAX_RANK`."""
    shapes = [m.shape for m in metas if m is not None]
    if "shape" in attrs and isinstance(attrs["shape"], tuple):
        shapes.append(attrs["shape"])
    for shape in shapes:
        if len(shape) > MAX_RANK:
            return f"tensors of rank {len(shape)} are not supported (the OpenCL backend handles rank <= {MAX_RANK})"
        if math.prod(shape) > MAX_ELEMENTS:
            return f"a tensor of {math.prod(shape)} elements exceeds 32-bit indexing (at most {MAX_ELEMENTS})"
    return None


def _widen(value: Any) -> Any:
    return elementwise.cast(value, dtype="float32") if isinstance(value, CLArray) and value.dtype == np.float16 \
        else value


def _narrow(value: Any) -> Any:
    return elementwise.cast(value, dtype="float16") if isinstance(value, CLArray) and value.dtype == np.float32 \
        else value


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    """Every op's kernel, plus float16 ones computed in float32 (float16 arrays are storage only on
    OpenCL 1.2, no ``cl_khr_fp16`` needed: widened and rounded on the device by ``cl/cast.cl``);
    the view ops take float16 as it is. Each kernel runs in its op's error scope."""
    dtypes = {op: d for module in FAMILIES for op, d in getattr(module, "DTYPES", {}).items()}
    kernels = [Kernel(op, fn, dtypes=("float16", *dtypes.get(op, DTYPES)), supports=None) if op in VIEW_OPS else
               Kernel(op, fn, dtypes=dtypes.get(op, DTYPES), supports=within_limits)
               for op, fn in sorted(all_kernels().items())]
    return [dataclasses.replace(k, fn=op_scope(k.op, k.fn))
            for k in kernels + float16_kernels(kernels, _widen, _narrow)]


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> Any:
    from .arrays import from_numpy

    return from_numpy(array, device.index)


@hookimpl
def opdispatch_to_numpy(data: Any, device: Any) -> np.ndarray:
    from .arrays import to_numpy

    return to_numpy(data)
