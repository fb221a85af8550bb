"""opdispatch: one vocabulary of deep-learning ops on any backend a plugin provides.

    import opdispatch as od
    x = od.tensor(np.random.rand(1, 3, 8, 8), dtype="float32")
    with od.device("numpy:0"):
        y = od.relu(od.conv2d(x, w, padding="SAME"))
"""

from __future__ import annotations

from typing import Mapping

from .api import (add, avg_pool2d, batch_norm, conv2d, div, exp, flatten, log, log_softmax, matmul, max,
                  max_pool2d, mean, mul, neg, relu, reshape, sigmoid, softmax, softmax_cross_entropy, sqrt, sub,
                  sum, tanh, transpose)
from .autodiff import GradientTape
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .device import Device, device, get_device
from .dispatch import PlacementEvent, clear_placement_log, placement_log
from .errors import (DeviceError, DeviceMismatchError, DTypeError, GradientError, InvalidArgumentError,
                     KernelError, OpDispatchError, PlacementWarning, ShapeError, UnsupportedError)
from .graph import Graph, GraphError, GraphFormatError, GraphRetraceWarning, GraphTraceError, function, load_graph
from .hookspecs import hookimpl
from .optim import SGD, Adam, Optimizer
from . import registry as _registry_module
from .registry import BackendStatus, register_plugin
from .tensor import Tensor, tensor

__version__ = "0.1.0"


def devices() -> list[Device]:
    """Every device available now, across the loaded backends (probed at run time)."""
    return _registry_module.registry().devices()


def backends() -> Mapping[str, BackendStatus]:
    """Backend name -> its status: loaded, unavailable (with the reason) or failed (with the error)."""
    return _registry_module.registry().backends()


__all__ = [
    "Tensor", "tensor", "GradientTape", "GradientError", "Device", "device", "devices", "get_device", "backends", "register_plugin",
    "BackendStatus", "PlacementEvent", "placement_log", "clear_placement_log", "hookimpl",
    "OpDispatchError", "InvalidArgumentError", "ShapeError", "DTypeError", "DeviceError", "DeviceMismatchError",
    "UnsupportedError", "KernelError", "PlacementWarning",
    "function", "Graph", "load_graph", "GraphError", "GraphTraceError", "GraphFormatError", "GraphRetraceWarning",
    "SGD", "Adam", "Optimizer", "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
    "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "matmul", "relu", "sigmoid", "tanh", "exp", "log",
    "sqrt", "add", "sub", "mul", "div", "neg", "sum", "mean", "max", "reshape", "transpose", "flatten",
    "softmax", "log_softmax", "softmax_cross_entropy", "__version__",
]
