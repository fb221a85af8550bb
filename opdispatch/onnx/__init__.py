"""``od.onnx``: models from ONNX (`load`) and graphs to ONNX (``export``).

    m = od.onnx.load("resnet18.onnx")    # a path or an onnx.ModelProto
    y = m(x)                             # on the device of x
    m.params                             # initializer name -> Tensor (fine-tune with GradientTape)
    f = od.function(m)                   # graph mode
    od.onnx.export(fn_or_graph, example_args, "out.onnx")   # opset 17; onnx.checker accepts it

The ``onnx`` package is an optional dependency (``pip install 'opdispatch[onnx]'``): this package
imports without it, and `load` then raises `OnnxNotInstalledError` saying how to install it.
"""

from __future__ import annotations

from .errors import OnnxExportError, OnnxImportError, OnnxNotInstalledError
from .export import EXPORTERS, export, to_model
from .model import MAX_OPSET, MIN_OPSET, InputSpec, OnnxModel, load, read_model
from .translate import HOST_INPUTS, TRANSLATORS, USES, NodeAttrs, node_attrs, supported_op_types

__all__ = ["load", "read_model", "OnnxModel", "InputSpec", "OnnxImportError", "OnnxNotInstalledError",
           "export", "to_model", "EXPORTERS", "OnnxExportError",
           "TRANSLATORS", "USES", "HOST_INPUTS", "NodeAttrs", "node_attrs", "supported_op_types", "MIN_OPSET",
           "MAX_OPSET"]
