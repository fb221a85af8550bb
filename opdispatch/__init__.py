"""opdispatch: one vocabulary of deep-learning ops on any backend a plugin provides.

    import opdispatch as od
    x = od.tensor(np.random.rand(1, 3, 8, 8), dtype="float32")
    with od.device("numpy:0"):
        y = od.relu(od.conv2d(x, w, padding="SAME"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Union

from . import api as _api
from . import random
from . import registry as _registry_module
from .api import *  # noqa: F401,F403 - the op functions, one module per family
from .api import op_function
from .autodiff import GradientTape
from .backend import BackendInfo, BackendUnavailable, DeviceInfo, Kernel, ProviderInfo
from .constructors import arange, eye, full, linspace, ones, ones_like, zeros, zeros_like
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .device import Device
from .dispatch import use_provider
from .errors import (ArgumentTypeError, DeviceError, DeviceMismatchError, DTypeError, GradientError,
                     InvalidArgumentError, KernelError, NumericsError, OpDispatchError, PlacementWarning, ShapeError,
                     TensorIndexError, UnsupportedError)
from .explain import Plan, explain
from .graph import Graph, GraphError, GraphFormatError, GraphRetraceWarning, GraphTraceError, function, load_graph
from .hookspecs import hookimpl
from .numerics import check_numerics
from .optim import SGD, Adam, Optimizer
from .placement import PlacementEvent, clear_placement_log, device, get_device, placement_log
from .registry import BackendStatus, KernelListing, ProviderStatus, register_plugin
from .schema import TensorMeta
from .tensor import Tensor, from_dlpack, tensor

__version__ = "0.1.0"


def devices(hidden: bool = False) -> list[Device]:
    """Every device available now, across the loaded backends (probed at run time). ``hidden=True``
    also lists hidden backends' devices, such as the built-in float64 ``reference:0``."""
    return _registry_module.registry().devices(hidden)


def backends(hidden: bool = False) -> Mapping[str, BackendStatus]:
    """Backend name -> its status: loaded, unavailable (with the reason) or failed (with the error)."""
    return _registry_module.registry().backends(hidden)


def providers() -> Mapping[str, ProviderStatus]:
    """Kernel provider name -> its status: priority, the backends it serves, its ops, enabled or not."""
    return _registry_module.registry().providers()


def device_info(device: Union[str, Device]) -> DeviceInfo:
    """What the backend declared of ``device`` (its name and dtypes), or a `DeviceError` saying why it
    cannot be used."""
    return _registry_module.registry().runtime(Device(device)).info


def kernels(device: Union[str, Device, None] = None, op: Optional[str] = None) -> list[KernelListing]:
    """The kernels each op may run on ``device`` (default: every listed device), in the order dispatch
    tries them (providers by priority, the backend's own last), disabled ones included and marked."""
    reg = _registry_module.registry()
    devs = reg.devices() if device is None else [Device(device)]
    return reg.kernels(devs, op)


def disable_provider(name: str) -> None:
    """Stop using the kernels of provider ``name`` (or of backend ``name``'s own kernels), in every
    thread, until `enable_provider`. The environment variable ``OPDISPATCH_DISABLE_PROVIDERS``
    (comma-separated names) does the same for a whole process."""
    _registry_module.registry().set_enabled(name, False)


def enable_provider(name: str) -> None:
    """Use the kernels of ``name`` again (see `disable_provider`)."""
    _registry_module.registry().set_enabled(name, True)


__all__ = [
    "Tensor", "tensor", "TensorMeta", "GradientTape", "GradientError", "Device", "device", "devices", "get_device",
    "backends", "device_info", "providers", "kernels", "disable_provider", "enable_provider", "use_provider", "explain",
    "Plan",
    "register_plugin", "BackendStatus", "ProviderStatus", "KernelListing", "PlacementEvent", "placement_log",
    "clear_placement_log", "hookimpl", "BackendInfo", "ProviderInfo", "DeviceInfo", "Kernel", "BackendUnavailable",
    "OpDispatchError", "InvalidArgumentError", "ShapeError", "DTypeError", "DeviceError", "DeviceMismatchError",
    "UnsupportedError", "KernelError", "PlacementWarning", "ArgumentTypeError", "NumericsError", "check_numerics",
    "TensorIndexError",
    "function", "Graph", "load_graph", "GraphError", "GraphTraceError", "GraphFormatError", "GraphRetraceWarning",
    "SGD", "Adam", "Optimizer", "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
    "op_function", "onnx", "random", "__version__",  # noqa: F405 - onnx: imported on first use (__getattr__)
    "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "linspace", "eye",
]
__all__ += [name for name in _api.__all__ if name != "op_function"]
__all__ += ["from_dlpack"]  # issue 14: DLPack import (opdispatch.tensor)


if TYPE_CHECKING:  # for type checkers od.onnx is the module; at run time __getattr__ imports it
    from . import onnx


def __getattr__(name: str) -> object:
    """``od.onnx`` (models from ONNX, graphs to ONNX) is imported on first use: it costs an import
    of its own (about 40 ms) that programs without ONNX need not pay."""
    if name == "onnx":
        import importlib
        return importlib.import_module(".onnx", __name__)
    raise AttributeError(f"module 'opdispatch' has no attribute {name!r}")
