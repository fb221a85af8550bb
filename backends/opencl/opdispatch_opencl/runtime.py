"""OpenCL runtime: device discovery, one context and in-order queue per device, the program and
kernel caches, work-group sizing from the device's limits, and guarded launches.

Programs are cached in process per (source family, build options, device) and across processes
by PoCL's on-disk kernel cache (``POCL_CACHE_DIR``, given a default before the first platform
query). One program holds a whole kernel family; the element type comes in as ``-D T=...``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Optional, Sequence

import numpy as np

from .errors import OpenCLUnsupportedError, translate

CACHE_ENV = "POCL_CACHE_DIR"
MAX_ELEMENTS = 2**31 - 1  # kernels index with 32-bit ints
MAX_LOCAL = 256  # upper bound on the work-group sizes this backend asks for
_CL_TYPES = {"float32": "float", "float64": "double", "int8": "char", "uint8": "uchar", "int16": "short",
             "uint16": "ushort", "int32": "int", "uint32": "uint", "int64": "long", "uint64": "ulong",
             "bool": "uchar", "float16": "half"}  # half: storage only (vload_half / vstore_half, see cl/cast.cl)


def default_cache_dir() -> str:
    """Where PoCL keeps compiled kernels when ``POCL_CACHE_DIR`` is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "opdispatch-opencl", "pocl")


def configure_cache() -> str:
    """Give ``POCL_CACHE_DIR`` a default (must run before the first platform query); return it."""
    path = os.environ.get(CACHE_ENV)
    if not path:
        path = default_cache_dir()
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            return ""
        os.environ[CACHE_ENV] = path
    return path


def cl_type(dtype: Any) -> str:
    """The OpenCL C type name of a NumPy dtype."""
    name = np.dtype(dtype).name
    try:
        return _CL_TYPES[name]
    except KeyError:
        raise OpenCLUnsupportedError(f"dtype {name} has no OpenCL counterpart") from None


def dtype_options(dtype: Any) -> str:
    """Build options selecting the element type ``T`` (and fp64 support for float64)."""
    t = cl_type(dtype)
    return f"-D T={t}" + (" -D USE_FP64" if t == "double" else "")


_PROBE_KERNEL = "__kernel void opdispatch_probe(__global float* a) { a[get_global_id(0)] += 1.0f; }"
_COMPILES: dict[tuple[str, ...], Optional[str]] = {}  # (platform, version, device) -> None or why not
_REJECTED: list[str] = []


def _compile_check(cl: Any, platform: Any, device: Any) -> Optional[str]:
    """None when ``device``'s OpenCL C compiler builds a trivial kernel, else the reason in words
    (checked once per process and device).

    A driver can list a device whose compiler fails on every program (PoCL whose LLVM does not know
    the host CPU reports ``unknown target CPU 'generic'``): such a device must not be offered."""
    key = (platform.name, platform.version, device.name)
    if key not in _COMPILES:
        try:
            cl.Program(cl.Context([device]), _PROBE_KERNEL).build()
            _COMPILES[key] = None
        except Exception as exc:
            text = " ".join(str(exc).split())
            _COMPILES[key] = text[:400] + ("..." if len(text) > 400 else "")
    return _COMPILES[key]


def probe() -> list[tuple[Any, Any]]:
    """Every usable (platform, device) pair, in a stable order: platforms by (name, vendor, version),
    devices in the platform's own order. A device whose compiler cannot build a trivial kernel is left
    out (`rejected` says why). Raises pyopencl's error when there is no platform."""
    configure_cache()
    import pyopencl as cl

    platforms = sorted(cl.get_platforms(), key=lambda p: (p.name, p.vendor, p.version))
    usable, broken = [], []
    for p in platforms:
        for d in p.get_devices():
            reason = _compile_check(cl, p, d)
            if reason is None:
                usable.append((p, d))
            else:
                broken.append(f"{d.name.strip()} ({p.name.strip()}, {p.version.strip()}): {reason}")
    _REJECTED[:] = broken
    return usable


def rejected() -> list[str]:
    """The devices the last `probe` left out, each with the reason its compiler failed."""
    return list(_REJECTED)


def _text(obj: Any, attribute: str) -> str:
    try:
        return " ".join(str(getattr(obj, attribute)).split())
    except Exception as exc:  # a driver that cannot answer this query
        return f"unknown ({type(exc).__name__})"


def driver_facts(platform: Any, device: Any) -> dict[str, str]:
    """What OpenCL tells of a device's driver (its `DeviceInfo.driver`): the platform's name, vendor and
    version, the device's OpenCL version and driver version, and pyopencl's version."""
    import pyopencl as cl

    return {"platform": f"{_text(platform, 'name')} ({_text(platform, 'vendor')})",
            "platform version": _text(platform, "version"), "device version": _text(device, "version"),
            "driver version": _text(device, "driver_version"), "pyopencl": str(cl.VERSION_TEXT)}


def device_dtypes(device: Any) -> tuple[str, ...]:
    """The float dtypes a device holds: float16 (stored, computed in float32: every OpenCL 1.2 device
    reads and writes half with vload_half / vstore_half), float32, and float64 with ``cl_khr_fp64``."""
    return ("float16", "float32", "float64") if "cl_khr_fp64" in device.extensions.split() else ("float16", "float32")


@dataclass(eq=False)
class DeviceState:
    """One OpenCL device in use: its context, queue and compiled programs."""

    index: int
    cl_device: Any
    context: Any = field(init=False)
    queue: Any = field(init=False)
    programs: dict = field(default_factory=dict)
    kernels: dict = field(default_factory=dict)
    local_sizes: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        import pyopencl as cl

        self.context = cl.Context([self.cl_device])
        self.queue = cl.CommandQueue(self.context)
        self.max_work_group = int(self.cl_device.max_work_group_size)
        self.max_item_sizes = tuple(int(s) for s in self.cl_device.max_work_item_sizes)
        self.local_mem = int(self.cl_device.local_mem_size)
        self.compute_units = int(self.cl_device.max_compute_units)
        self.max_alloc = int(self.cl_device.max_mem_alloc_size)  # the largest buffer it allocates
        self.global_mem = int(self.cl_device.global_mem_size)
        self.label = f"opencl:{self.index} ({self.cl_device.name.strip()})"

    def program(self, family: str, options: str) -> Any:
        """The built program of kernel family ``family`` (``cl/<family>.cl``) with ``options``."""
        key = (family, options)
        prg = self.programs.get(key)
        if prg is None:
            with self.lock:
                prg = self.programs.get(key)
                if prg is None:
                    prg = self._build(family, options)
                    self.programs[key] = prg
        return prg

    def _build(self, family: str, options: str) -> Any:
        import pyopencl as cl

        prg = cl.Program(self.context, source(family))
        try:
            return prg.build(options=options.split())
        except cl.Error as exc:
            try:
                log = prg.get_build_info(self.cl_device, cl.program_build_info.LOG)
            except Exception:
                log = ""
            raise translate(exc, self.label, f"{family}.cl [{options}]", build_log=log or str(exc)) from exc

    def kernel(self, family: str, name: str, options: str) -> Any:
        """Kernel ``name`` of family ``family`` built with ``options`` (cached)."""
        key = (family, name, options)
        knl = self.kernels.get(key)
        if knl is None:
            import pyopencl as cl

            prg = self.program(family, options)
            with self.lock:  # one kernel object per key: `local_sizes` is keyed by its id
                knl = self.kernels.get(key)
                if knl is None:
                    try:
                        knl = cl.Kernel(prg, name)
                    except cl.Error as exc:
                        raise translate(exc, self.label, name) from exc
                    self.kernels[key] = knl
        return knl

    def local_size(self, knl: Any, want: int = MAX_LOCAL) -> int:
        """The largest power of two <= ``want`` that both the device and ``knl`` allow."""
        key = (id(knl), want)
        size = self.local_sizes.get(key)
        if size is None:
            import pyopencl as cl

            limit = min(want, self.max_work_group, self.max_item_sizes[0],
                        int(knl.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, self.cl_device)))
            size = 1
            while size * 2 <= limit:
                size *= 2
            self.local_sizes[key] = size
        return size

    def launch(self, knl: Any, global_size: Sequence[int], local_size: Optional[Sequence[int]], *args: Any) -> None:
        """Enqueue ``knl`` over ``global_size`` (already a multiple of ``local_size``)."""
        if any(g == 0 for g in global_size):
            return
        import pyopencl as cl

        try:
            with self.lock:
                knl.set_args(*args)
                cl.enqueue_nd_range_kernel(self.queue, knl, tuple(global_size),
                                           None if local_size is None else tuple(local_size))
        except cl.Error as exc:
            raise translate(exc, self.label, knl.function_name) from exc

    def alloc(self, nbytes: int) -> Any:
        """A fresh device buffer of ``nbytes`` (at least one byte: OpenCL has no empty buffers)."""
        import pyopencl as cl

        try:
            return cl.Buffer(self.context, cl.mem_flags.READ_WRITE, max(int(nbytes), 8))
        except cl.Error as exc:
            raise translate(exc, self.label, "<buffer allocation>") from exc


def source(family: str) -> str:
    """The OpenCL C text of ``family``, with the shared prelude in front."""
    text = _SOURCES.get(family)
    if text is None:
        files = resources.files(__package__) / "cl"
        text = (files / "common.cl").read_text() + "\n" + (files / f"{family}.cl").read_text()
        _SOURCES[family] = text
    return text


_SOURCES: dict[str, str] = {}
_STATES: dict[int, DeviceState] = {}
_STATES_LOCK = threading.Lock()


def state(index: int) -> DeviceState:
    """The `DeviceState` of ``opencl:index``, created on first use."""
    st = _STATES.get(index)
    if st is None:
        with _STATES_LOCK:
            st = _STATES.get(index)
            if st is None:
                devices = probe()
                if not 0 <= index < len(devices):
                    raise OpenCLUnsupportedError(f"opencl:{index} does not exist; this machine has "
                                                 f"{len(devices)} OpenCL device(s)")
                st = DeviceState(index, devices[index][1])
                _STATES[index] = st
    return st


def check_size(n: int, what: str = "tensor") -> None:
    """Refuse element counts beyond 32-bit indexing."""
    if n > MAX_ELEMENTS:
        raise OpenCLUnsupportedError(f"a {what} of {n} elements exceeds this backend's limit of {MAX_ELEMENTS} "
                                     f"(32-bit indexing)")


def round_up(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m``."""
    return -(-n // m) * m
