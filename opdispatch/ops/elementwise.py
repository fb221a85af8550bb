"""Element-wise unary ops and broadcasting binary ops."""

from __future__ import annotations

from .. import reference
from ..errors import ShapeError
from ..schema import Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import float_inputs


def _infer_unary(op, metas, attrs):
    (x,) = metas
    float_inputs(op, [("x", x)])
    return [x], attrs


def _infer_binary(op, metas, attrs):
    a, b = metas
    dtype = float_inputs(op, [("a", a), ("b", b)])
    shape = broadcast_shapes(a.shape, b.shape)
    if shape is None:
        raise ShapeError(f"{op}: arguments 'a' {a.shape} and 'b' {b.shape} do not broadcast; allowed: "
                         f"shapes whose trailing dimensions are equal or 1 (NumPy broadcasting)")
    return [TensorMeta(shape, dtype)], attrs


def _unary(name: str, doc: str, tolerance_factor: float = 1.0) -> OpSchema:
    return OpSchema(name=name, inputs=(Input("x"),), attrs=(), infer=_infer_unary,
                    reference=getattr(reference, name), doc=doc, tolerance_factor=tolerance_factor)


def _binary(name: str, doc: str) -> OpSchema:
    return OpSchema(name=name, inputs=(Input("a"), Input("b")), attrs=(), infer=_infer_binary,
                    reference=getattr(reference, name), doc=doc)


RELU = _unary("relu", "max(x, 0)")
SIGMOID = _unary("sigmoid", "1 / (1 + exp(-x))", 4.0)
TANH = _unary("tanh", "hyperbolic tangent", 4.0)
EXP = _unary("exp", "e ** x", 4.0)
LOG = _unary("log", "natural logarithm", 4.0)
SQRT = _unary("sqrt", "square root")
NEG = _unary("neg", "-x")
ADD = _binary("add", "a + b with NumPy broadcasting")
SUB = _binary("sub", "a - b with NumPy broadcasting")
MUL = _binary("mul", "a * b with NumPy broadcasting")
DIV = _binary("div", "a / b with NumPy broadcasting")
