"""What a backend plugin declares: its identity, its devices and its kernels.

A backend's plugin module returns these objects from the hooks in `opdispatch.hookspecs`::

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
        return [Kernel("relu", my_relu, dtypes=("float32",))]
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
    """A backend's identity. ``name`` is the device prefix (``name:0``)."""

    name: str
    version: str = "0"
    description: str = ""


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
    """A backend's implementation of one op.

    ``fn(*inputs, **attrs)`` receives the backend's own arrays (None for an absent optional input)
    and the op's canonical attributes (see each schema), and returns an array, or a tuple for
    ops with several outputs. ``dtypes`` lists the float dtypes it handles. ``supports``, when
    given, is called as ``supports(input_metas, attrs)`` before each call and returns None when
    it can run, or a short reason such as ``"groups > 1 is not implemented"``.
    """

    op: str
    fn: Callable[..., Any]
    dtypes: Sequence[Any] = ("float32", "float64")
    supports: Optional[SupportsFn] = None
    dtype_set: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype_set", _dtypes(self.dtypes))
