"""What a plugin declares: a backend's identity, devices and kernels, or a kernel provider's.

A backend's plugin module returns these objects from the hooks in `opdispatch.hookspecs` (all
five are required)::

    import numpy as np
    from opdispatch import hookimpl
    from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

    @hookimpl
    def opdispatch_backend_info():
        return BackendInfo(name="mybackend", version="1.0")

    @hookimpl
    def opdispatch_devices():
        return [DeviceInfo(index=0, name="My accelerator", dtypes=("float32",))]

    @hookimpl
    def opdispatch_kernels():
        return [Kernel("relu", lambda x: np.maximum(x, 0), dtypes=("float32",))]

    @hookimpl
    def opdispatch_from_numpy(array, device):
        return np.array(array)          # the backend's own array type, holding a copy

    @hookimpl
    def opdispatch_to_numpy(data, device):
        return np.array(data)           # a NumPy copy

A kernel provider adds kernels to the devices of an existing backend (a faster conv2d for
``numpy:0``, say) from its own distribution, with a priority over the backend's built-in kernels::

    @hookimpl
    def opdispatch_provider_info():
        return ProviderInfo(name="fastconv", version="1.0", priority=100)

    @hookimpl
    def opdispatch_provider_kernels():
        return [Kernel("conv2d", fast_conv2d, dtypes=("float32",), backend="numpy", supports=fits)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from .errors import OpDispatchError


class BackendUnavailable(OpDispatchError):
    """Raised by ``opdispatch_devices`` when the backend cannot run here (no driver, no device...).
    Its message is shown as the backend's status reason."""


@dataclass(frozen=True)
class BackendInfo:
    """A backend's identity. ``name`` is the device prefix (``name:0``). A ``hidden`` backend's
    devices (a debugging or oracle backend) are left out of ``od.devices()`` unless asked for.
    ``array_types``: the classes of the backend's arrays (``(numpy.ndarray,)``, say); when given,
    a kernel result of any other class is refused as a `KernelError` (empty: any object whose
    shape and dtype the backend describes)."""

    name: str
    version: str = "0"
    description: str = ""
    hidden: bool = False
    array_types: tuple = ()


BUILTIN_PRIORITY = 0
"""The priority of a backend's own kernels: the lowest, so any provider's kernel is tried first."""


@dataclass(frozen=True)
class ProviderInfo:
    """A kernel provider's identity and the priority of its kernels (> 0: above every backend's
    built-in kernels; among providers, the higher priority is tried first)."""

    name: str
    version: str = "0"
    description: str = ""
    priority: int = 100


def _dtypes(values: Iterable[Any]) -> frozenset:
    return frozenset(np.dtype(v) for v in values)


@dataclass(frozen=True)
class DeviceInfo:
    """One device of a backend: its index, a human name and the dtypes it computes in."""

    index: int
    name: str = ""
    dtypes: Sequence[Any] = ("float32", "float64")
    dtype_set: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype_set", _dtypes(self.dtypes))


SupportsFn = Callable[[Sequence[Any], dict], Optional[str]]


@dataclass(frozen=True)
class Kernel:
    """An implementation of one op.

    ``fn(*inputs, **attrs)`` receives the backend's own arrays (None for an absent optional input)
    and the op's canonical attributes (see each schema), and returns an array, or a tuple for
    ops with several outputs. ``dtypes`` lists the dtypes it computes in (floats; int32, int64 and
    bool for ops taking such values, see `opdispatch.dtypes.KERNEL_DTYPES`). ``supports``, when
    given, is called as ``supports(input_metas, attrs)`` and returns None when it can run, or a
    short reason such as ``"groups > 1 is not implemented"``; it must depend only on those metas
    and attributes (its answer is cached per call signature). A provider's kernel names the
    ``backend`` whose devices (and arrays) it serves; a backend's own kernels leave it None.
    """

    op: str
    fn: Callable[..., Any]
    dtypes: Sequence[Any] = ("float32", "float64")
    supports: Optional[SupportsFn] = None
    backend: Optional[str] = None
    dtype_set: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype_set", _dtypes(self.dtypes))
