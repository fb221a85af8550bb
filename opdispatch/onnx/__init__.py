"""``od.onnx``: models from ONNX (`load`) and graphs to ONNX (``export``).

    m = od.onnx.load("resnet18.onnx")    # a path or an onnx.ModelProto
    y = m(x)                             # on the device of x
    m.params                             # initializer name -> Tensor (fine-tune with GradientTape)
    f = od.function(m)                   # graph mode

The ``onnx`` package is an optional dependency (``pip install 'opdispatch[onnx]'``): this package
imports without it, and `load` then raises `OnnxNotInstalledError` saying how to install it.
"""

from __future__ import annotations

from .errors import OnnxImportError, OnnxNotInstalledError
from .model import MAX_OPSET, MIN_OPSET, InputSpec, OnnxModel, load, read_model
from .translate import HOST_INPUTS, TRANSLATORS, USES, NodeAttrs, node_attrs, supported_op_types

# od.onnx.export (graphs to ONNX) lives in .export; its import goes here:

__all__ = ["load", "read_model", "OnnxModel", "InputSpec", "OnnxImportError", "OnnxNotInstalledError",
           "TRANSLATORS", "USES", "HOST_INPUTS", "NodeAttrs", "node_attrs", "supported_op_types", "MIN_OPSET",
           "MAX_OPSET"]
