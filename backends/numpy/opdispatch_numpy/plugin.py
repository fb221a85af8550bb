"""The plugin module named by this distribution's ``opdispatch.backends`` entry point.

numpy:0 computes in float32 and float64, and stores float16: each op's float16 kernel is its float32
kernel behind `opdispatch.backend.float16_kernels` (inputs widened, float results rounded once to float16), declared
as a kernel of its own so that the float32 and float64 calls run the unwrapped kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel, float16_kernels

from . import __version__, compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES = ("float32", "float64")
"""What the kernels compute in; float16 is computed in float32 (`float16_kernels`)."""
DEVICE_DTYPES = ("float16", *DTYPES)
FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS`` and, for ops
that compute in other dtypes than `DTYPES` (int, bool), those in a ``DTYPES`` dict by op."""


@hookimpl
def opdispatch_backend_info() -> BackendInfo:
    return BackendInfo(name="numpy", version=f"{__version__} (numpy {np.__version__})",
                       description="NumPy on the CPU", array_types=(np.ndarray, np.generic), plugin_api=1)


def driver_facts() -> dict[str, str]:
    """What numpy:0 runs on (its `DeviceInfo.driver`): NumPy's version, the BLAS NumPy was built with
    (``numpy.show_config``) and, where threadpoolctl is installed, the BLAS loaded in this process with
    its threading layer, CPU kernels and thread count (which change matmul's rounding)."""
    facts = {"numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        facts["blas"] = " ".join(str(blas.get(k, "")) for k in ("name", "version")).strip() or "unknown"
        if blas.get("openblas configuration"):
            facts["blas configuration"] = " ".join(str(blas["openblas configuration"]).split())
    except Exception as exc:  # NumPy < 1.26 has no mode="dicts"
        facts["blas"] = f"unknown ({type(exc).__name__})"
    try:
        import threadpoolctl
    except ImportError:
        facts["blas at run time"] = "unknown (pip install threadpoolctl to record it)"
        return facts
    loaded = [lib for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    facts["blas at run time"] = "; ".join(
        f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('threading_layer', '?')} threading, "
        f"{lib.get('architecture', '?')} kernels, {_threads(lib.get('num_threads'))})"
        for lib in loaded) or "none loaded"
    return facts


def _threads(count: Any) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


@hookimpl
def opdispatch_devices() -> list[DeviceInfo]:
    return [DeviceInfo(index=0, name="CPU (NumPy; float16 computed in float32)", dtypes=DEVICE_DTYPES,
                       driver=driver_facts())]


_ARRAYS = (np.ndarray, np.generic)


def _widen(value: Any) -> Any:
    return value.astype(np.float32) if isinstance(value, _ARRAYS) and value.dtype == np.float16 else value


def _narrow(value: Any) -> Any:
    return value.astype(np.float16) if isinstance(value, _ARRAYS) and value.dtype == np.float32 else value


@hookimpl
def opdispatch_kernels() -> list[Kernel]:
    named = {op: fn for family in FAMILIES for op, fn in family.KERNELS.items()}
    dtypes = {op: d for family in FAMILIES for op, d in getattr(family, "DTYPES", {}).items()}
    kernels = [Kernel(op, fn, dtypes=dtypes.get(op, DTYPES)) for op, fn in sorted(named.items())]
    return kernels + float16_kernels(kernels, _widen, _narrow)


@hookimpl
def opdispatch_from_numpy(array: np.ndarray, device: Any) -> np.ndarray:
    return np.array(array, copy=True, order="C")


@hookimpl
def opdispatch_to_numpy(data: np.ndarray, device: Any) -> np.ndarray:
    return np.array(data, copy=True)
