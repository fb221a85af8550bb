"""CuPy, imported lazily, and the device probe: why CUDA is unusable here, in words.

Nothing here runs at import of the plugin; `load_cupy` and `probe_devices` are called from the
``opdispatch_devices`` hook, which turns every "cannot run here" into `BackendUnavailable`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType
from typing import Any, Optional

from opdispatch.backend import BackendUnavailable, DeviceInfo

INSTALL_HINT = "pip install 'opdispatch-cupy[cuda12x-ctk]' (or cupy-cuda12x / cupy-cuda11x)"
WHEELS = ("cupy-cuda12x", "cupy-cuda11x", "cupy-cuda13x", "cupy")


def cupy_version() -> Optional[str]:
    """The installed CuPy distribution and version, read from its metadata without importing it."""
    for dist in WHEELS:
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def load_cupy() -> ModuleType:
    """``import cupy``, or `BackendUnavailable` saying why it cannot be imported."""
    try:
        return importlib.import_module("cupy")
    except ImportError as exc:
        raise BackendUnavailable(f"CuPy is not installed or cannot be imported ({exc}); {INSTALL_HINT}") from None
    except OSError as exc:  # a CUDA library that fails to load
        raise BackendUnavailable(f"CuPy could not load a CUDA library: {exc}") from None


def _cuda_error(cupy: ModuleType) -> str:
    """Why the CUDA runtime refuses to work, from the error of a device query."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError (a RuntimeError), or a missing libcudart
        return f"{type(exc).__name__}: {exc}"
    return "no CUDA device found" if count == 0 else f"{count} device(s) reported, but CuPy cannot use them"


def _cuda_version(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def _driver(cupy: ModuleType) -> str:
    try:
        version = int(cupy.cuda.runtime.driverGetVersion())
    except Exception:
        return "unknown"
    return "not found" if version == 0 else _cuda_version(version)


def driver_facts(cupy: ModuleType) -> dict[str, str]:
    """What CUDA tells of the driver the devices run on (their `DeviceInfo.driver`): the CUDA version the
    driver supports, the CUDA runtime CuPy uses, and CuPy's distribution and version."""
    try:
        runtime = _cuda_version(int(cupy.cuda.runtime.runtimeGetVersion()))
    except Exception as exc:
        runtime = f"unknown ({type(exc).__name__})"
    return {"cuda driver": _driver(cupy), "cuda runtime": runtime, "cupy": cupy_version() or "unknown"}


def missing_libraries() -> Optional[str]:
    """None when the CUDA libraries the kernels need load (NVRTC compiles CuPy's kernels, cuBLAS runs
    matmul and conv), else what failed. ``cupy.is_available()`` only asks the driver for devices:
    without a CUDA toolkit (or the ``[ctk]`` wheels) every kernel would fail on first use."""
    try:
        importlib.import_module("cupy_backends.cuda.libs.cublas")  # loading it is the check
        importlib.import_module("cupy_backends.cuda.libs.nvrtc").getVersion()
    except Exception as exc:  # ImportError, or cuda.pathfinder's DynamicLibNotFoundError (a RuntimeError)
        return f"{type(exc).__name__}: {exc}"
    return None


def unavailable_reason(cupy: ModuleType) -> Optional[str]:
    """None when CUDA works, else the reason (the CUDA error and the driver version, or the missing library)."""
    try:
        if not cupy.is_available():
            return f"no usable CUDA device: {_cuda_error(cupy)} (CUDA driver: {_driver(cupy)}, {cupy_version()})"
    except Exception as exc:
        return f"cupy.is_available() raised {type(exc).__name__}: {exc}"
    missing = missing_libraries()
    if missing is not None:
        return f"a GPU is present but the CUDA libraries CuPy's kernels need do not load ({missing}); {INSTALL_HINT}"
    return None


def _device_info(cupy: ModuleType, index: int, driver: Optional[dict[str, str]] = None) -> DeviceInfo:
    props: dict[str, Any] = cupy.cuda.runtime.getDeviceProperties(index)
    name = props.get("name", b"")
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    major, minor = props.get("major", "?"), props.get("minor", "?")
    memory = props.get("totalGlobalMem", 0) / 2**30
    return DeviceInfo(index=index, name=f"{name} (compute capability {major}.{minor}, {memory:.0f} GiB; "
                                        f"float16 computed in float32)", dtypes=("float16", "float32", "float64"),
                      driver=driver if driver is not None else driver_facts(cupy))


def probe_devices() -> list[DeviceInfo]:
    """One `DeviceInfo` per CUDA device, or `BackendUnavailable` with the reason."""
    cupy = load_cupy()
    reason = unavailable_reason(cupy)
    if reason is not None:
        raise BackendUnavailable(reason)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        driver = driver_facts(cupy)
        return [_device_info(cupy, i, driver) for i in range(count)]
    except Exception as exc:  # cupy_backends CUDARuntimeError
        raise BackendUnavailable(f"querying the CUDA devices failed: {type(exc).__name__}: {exc}") from None
