"""OpenCL failures as opdispatch errors that name the device, the OpenCL kernel and the op.

Every kernel function of this backend runs inside `op_scope` (see `plugin.py`), which records
the op being run; `translate` turns a pyopencl exception (build failure, out of memory, invalid
work-group size...) into the matching `OpenCLError` subclass with that context.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, Optional, TypeVar

from opdispatch.errors import KernelError, UnsupportedError

_CURRENT_OP: contextvars.ContextVar[str] = contextvars.ContextVar("opdispatch_opencl_op",
                                                                  default="host-device transfer")

F = TypeVar("F", bound=Callable[..., Any])


class OpenCLError(KernelError):
    """An OpenCL call failed while running an op (the pyopencl error is chained)."""


class OpenCLBuildError(OpenCLError):
    """An OpenCL C program failed to compile; the message carries the build log."""


class OpenCLOutOfMemoryError(OpenCLError, MemoryError):
    """The device could not allocate a buffer or the resources a launch needs."""


class OpenCLLaunchError(OpenCLError):
    """A kernel launch was rejected (invalid work-group size, arguments, ...)."""


class OpenCLUnsupportedError(UnsupportedError):
    """A call this backend cannot run (e.g. more elements than 32-bit indexing allows)."""


_OOM_CODES = ("MEM_OBJECT_ALLOCATION_FAILURE", "OUT_OF_RESOURCES", "OUT_OF_HOST_MEMORY", "INVALID_BUFFER_SIZE")
_LAUNCH_CODES = ("INVALID_WORK_GROUP_SIZE", "INVALID_WORK_ITEM_SIZE", "INVALID_GLOBAL_WORK_SIZE",
                 "INVALID_KERNEL_ARGS", "INVALID_ARG_SIZE", "INVALID_ARG_VALUE")


def current_op() -> str:
    """The op whose kernel is running in this context (``"host-device transfer"`` outside any)."""
    return _CURRENT_OP.get()


def _code_name(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    what = getattr(code, "what", None)
    routine = getattr(what, "routine", None) if what is not None else None
    text = str(exc)
    for name in _OOM_CODES + _LAUNCH_CODES + ("BUILD_PROGRAM_FAILURE",):
        if name in text or (routine and name in str(routine)):
            return name
    return type(exc).__name__


def translate(exc: BaseException, device: str, kernel: str, build_log: Optional[str] = None) -> OpenCLError:
    """The `OpenCLError` for pyopencl exception ``exc`` raised by ``kernel`` on ``device``."""
    code = _code_name(exc)
    where = f"{current_op()}: OpenCL kernel {kernel!r} on {device}"
    if build_log is not None or code == "BUILD_PROGRAM_FAILURE":
        err: OpenCLError = OpenCLBuildError(f"{where} failed to compile: {exc}"
                                            + (f"\nbuild log:\n{build_log}" if build_log else ""))
    elif code in _OOM_CODES or isinstance(exc, MemoryError):
        err = OpenCLOutOfMemoryError(f"{where} ran out of device memory ({code}): {exc}")
    elif code in _LAUNCH_CODES:
        err = OpenCLLaunchError(f"{where} could not be launched ({code}): {exc}")
    else:
        err = OpenCLError(f"{where} failed ({code}): {exc}")
    err.__cause__ = exc
    return err


def op_scope(op: str, fn: F) -> F:
    """Wrap kernel function ``fn`` of ``op`` so that errors raised inside name the op."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _CURRENT_OP.set(op)
        try:
            return fn(*args, **kwargs)
        finally:
            _CURRENT_OP.reset(token)

    return run  # type: ignore[return-value]
