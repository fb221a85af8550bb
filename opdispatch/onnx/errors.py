"""The errors of `opdispatch.onnx`."""

from __future__ import annotations

from ..errors import OpDispatchError

INSTALL_HINT = "pip install 'opdispatch[onnx]' (or pip install onnx)"


class OnnxImportError(OpDispatchError):
    """An ONNX model cannot be imported: the file is not a readable ONNX model, or it uses op types
    (or forms of them) that opdispatch does not translate; the message lists every one."""


class OnnxExportError(OpDispatchError):
    """A function or graph that cannot be written as ONNX (an op without an ONNX form, a bad opset or
    argument); the message lists what is at fault, and nothing is written."""


class OnnxNotInstalledError(OnnxImportError, ImportError):
    """The optional ``onnx`` package is not installed; the message says how to install it."""


def require_onnx(what: str) -> object:
    """The ``onnx`` module, or `OnnxNotInstalledError` saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise OnnxNotInstalledError(f"{what} needs the optional onnx package, which is not installed: "
                                    f"{INSTALL_HINT}") from exc
    return onnx
