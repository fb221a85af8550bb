"""What a plugin declares: a backend's identity, devices and kernels, or a kernel provider's.

A backend's plugin module returns these objects from the hooks in `opdispatch.hookspecs` (all
five are required: `opdispatch.hookspecs.BACKEND_HOOKS`)::

    import numpy as np
    from opdispatch import hookimpl
    from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

    @hookimpl
    def opdispatch_backend_info():
        return BackendInfo(name="mybackend", version="1.0", plugin_api=1)  # the API it was written for

    @hookimpl
    def opdispatch_devices():
        return [DeviceInfo(index=0, name="My accelerator", dtypes=("float32",))]

    @hookimpl
    def opdispatch_kernels():
        return [Kernel("relu", lambda x: np.maximum(x, 0), dtypes=("float32",))]

    @hookimpl
    def opdispatch_from_numpy(array, device):
        return np.array(array)          # the backend's own array type, holding a copy (any dtype:
                                        # int64 labels and bool masks arrive on float-only devices too)

    @hookimpl
    def opdispatch_to_numpy(data, device):
        return np.array(data)           # a NumPy copy

Saved as ``mybackend_plugin.py``, ``od.register_plugin(mybackend_plugin)`` loads it (an installed
distribution names it in its ``opdispatch.backends`` entry point instead) and ``od.relu(x)`` runs
on ``mybackend:0`` for an ``x`` there; ``opdispatch new-backend NAME`` writes a complete
distribution to start from.

A kernel provider adds kernels to the devices of an existing backend (a faster conv2d for
``numpy:0``, say) from its own distribution, with a priority over the backend's built-in kernels
(its hooks, `opdispatch.hookspecs.PROVIDER_HOOKS`, are both required)::

    import numpy as np
    from opdispatch import hookimpl
    from opdispatch.backend import Kernel, ProviderInfo

    def fast_conv2d(x, w, bias, *, stride, padding, dilation, groups):
        ...                             # returns a fresh float32 array of conv2d's output shape

    def fits(metas, attrs):             # None: it can run this call; else why not
        return None if attrs["groups"] == 1 else "groups > 1 is not implemented"

    @hookimpl
    def opdispatch_provider_info():
        return ProviderInfo(name="fastconv", version="1.0", priority=100, plugin_api=1)

    @hookimpl
    def opdispatch_provider_kernels():
        return [Kernel("conv2d", fast_conv2d, dtypes=("float32",), backend="numpy", supports=fits)]
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from .errors import OpDispatchError

PLUGIN_API = 1
"""The plugin API this opdispatch implements: the hooks of `opdispatch.hookspecs`, what the objects
of this module mean and how kernels are called. A plugin declares the API it was written for
as a literal number (`BackendInfo.plugin_api`, `ProviderInfo.plugin_api`: ``plugin_api=1``, not
``plugin_api=PLUGIN_API``, which would claim whatever API is installed); one built for an API this release does not
load (`SUPPORTED_PLUGIN_APIS`) fails at load with "built for plugin API N, this is plugin API M"
instead of a hook or kernel signature mismatch. The number changes only when a change to the plugin
interface would break plugins written for the previous one."""

SUPPORTED_PLUGIN_APIS = (1,)
"""The plugin APIs whose plugins this release loads."""


class BackendUnavailable(OpDispatchError):
    """Raised by ``opdispatch_devices`` when the backend cannot run here (no driver, no device...).
    Its message is shown as the backend's status reason."""


@dataclass(frozen=True)
class BackendInfo:
    """A backend's identity. ``name`` is the device prefix (``name:0``). A ``hidden`` backend's
    devices (a debugging or oracle backend) are left out of ``od.devices()`` unless asked for.
    ``array_types``: the classes of the backend's arrays (``(numpy.ndarray,)``, say); when given,
    a kernel result of any other class is refused as a `KernelError` (empty: any object whose
    shape and dtype the backend describes). ``plugin_api``: the `PLUGIN_API` the backend was
    written for (checked at load)."""

    name: str
    version: str = "0"
    description: str = ""
    hidden: bool = False
    array_types: tuple = ()
    plugin_api: int = 1


BUILTIN_PRIORITY = 0
"""The priority of a backend's own kernels: the lowest, so any provider's kernel is tried first."""


@dataclass(frozen=True)
class ProviderInfo:
    """A kernel provider's identity and the priority of its kernels (> 0: above every backend's
    built-in kernels; among providers, the higher priority is tried first). ``plugin_api``: the
    `PLUGIN_API` the provider was written for (checked at load)."""

    name: str
    version: str = "0"
    description: str = ""
    priority: int = 100
    plugin_api: int = 1


def _dtypes(values: Iterable[Any]) -> frozenset:
    return frozenset(np.dtype(v) for v in values)


@dataclass(frozen=True)
class DeviceInfo:
    """One device of a backend: its index, a human name, the dtypes it computes in and, optionally,
    what the backend can tell of the driver and runtime the device runs on: ``driver`` maps a fact's
    name to its value, both strings (``{"platform": "Portable Computing Language", "driver version":
    "6.0"}``; CUDA driver and runtime versions, the BLAS a CPU backend links...). ``opdispatch
    devices`` lists them and every conformance report records them with the device's results, so two
    reports from two machines say what differed. Gather them in the probe (`opdispatch_devices`): it
    runs once, where the heavy imports are."""

    index: int
    name: str = ""
    dtypes: Sequence[Any] = ("float32", "float64")
    driver: Mapping[str, str] = field(default_factory=dict, hash=False)
    dtype_set: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype_set", _dtypes(self.dtypes))


SupportsFn = Callable[[Sequence[Any], dict], Optional[str]]

CHANNELS_LAST = "channels_last"
LAYOUTS = (CHANNELS_LAST,)
"""Result layouts a kernel may declare (`Kernel.layouts`). ``"channels_last"``: a 4-D (N, C, H, W)
result stored as (N, H, W, C) in memory, as a NumPy array is when it is the transpose ``(0, 3, 1, 2)``
of a C-contiguous (N, H, W, C) one (strides, not a different shape: every reader sees the same values)."""


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
    ``layouts`` names the memory layouts (of `LAYOUTS`) the kernel can write its result in when a
    graph asks: the graph's layout pass then calls it with ``layout="channels_last"`` where the
    result's next readers run faster on that layout (same values, another order in memory); a kernel
    declaring none is never passed ``layout``.
    """

    op: str
    fn: Callable[..., Any]
    dtypes: Sequence[Any] = ("float32", "float64")
    supports: Optional[SupportsFn] = None
    backend: Optional[str] = None
    layouts: Sequence[str] = ()
    dtype_set: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype_set", _dtypes(self.dtypes))


_FLOAT16, _FLOAT32 = np.dtype("float16"), np.dtype("float32")


def float16_kernels(kernels: Iterable[Kernel], widen: Callable[[Any], Any],
                    narrow: Callable[[Any], Any]) -> list[Kernel]:
    """float16 kernels computed in float32, for a backend that stores float16 but computes in float32:
    for each of ``kernels`` that computes in float32 and not already in float16, a kernel of its own
    (dtypes float16, the same ``supports``) whose inputs go through ``widen`` (a float16 array to a
    float32 one; anything else as it is) and whose results, each of a tuple, go through ``narrow``
    (a float32 array rounded to float16; int and bool results as they are). Declared beside the
    originals, they leave the float32 and float64 calls on the unwrapped kernels."""

    def half(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **attrs: Any) -> Any:
            out = fn(*map(widen, args), **attrs)
            return tuple(map(narrow, out)) if isinstance(out, tuple) else narrow(out)

        return run

    return [dataclasses.replace(k, fn=half(k.fn), dtypes=("float16",)) for k in kernels
            if _FLOAT32 in k.dtype_set and _FLOAT16 not in k.dtype_set]
