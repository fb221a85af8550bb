"""The elementwise family: unary ops, broadcasting binary ops and the relu gradient."""

from __future__ import annotations

from .. import reference
from ..attrs import to_float
from ..errors import ShapeError
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import float_inputs
from ._rules import unbroadcast

FAMILY = "elementwise"


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


def _unary(name: str, doc: str, vjp, tolerance_factor: float = 1.0, decomposition=None) -> OpSchema:
    return OpSchema(name=name, family=FAMILY, inputs=(Input("x"),), attrs=(), infer=_infer_unary,
                    reference=getattr(reference.elementwise, name), doc=doc, tolerance_factor=tolerance_factor,
                    vjp=vjp, decomposition=decomposition)


def _binary(name: str, doc: str, vjp) -> OpSchema:
    return OpSchema(name=name, family=FAMILY, inputs=(Input("a"), Input("b")), attrs=(), infer=_infer_binary,
                    reference=getattr(reference.elementwise, name), doc=doc, vjp=vjp)


def _binary_grads(F, rec, da, db):
    a, b = rec.inputs
    return [unbroadcast(F, da, a.shape) if rec.wants(0) else None,
            unbroadcast(F, db, b.shape) if rec.wants(1) else None]


def _sigmoid(F, x):
    """0.5 + 0.5 * tanh(x / 2): smooth, and nothing overflows, so neither the value nor its gradient
    (through these ops) meets inf * 0 (1 / (1 + exp(-x)) does, for large negative x)."""
    return F.add(0.5, F.mul(0.5, F.tanh(F.mul(0.5, x))))


RELU = _unary("relu", "max(x, 0)", lambda F, rec, g: [F.relu_backward(g[0], rec.inputs[0])])
SIGMOID = _unary("sigmoid", "1 / (1 + exp(-x))",
                 lambda F, rec, g: [g[0] * rec.outputs[0] * (1.0 - rec.outputs[0])], 4.0,
                 Decomposition(_sigmoid, uses=("mul", "tanh", "add")))
TANH = _unary("tanh", "hyperbolic tangent", lambda F, rec, g: [g[0] * (1.0 - rec.outputs[0] * rec.outputs[0])], 4.0)
EXP = _unary("exp", "e ** x", lambda F, rec, g: [g[0] * rec.outputs[0]], 4.0)
LOG = _unary("log", "natural logarithm", lambda F, rec, g: [g[0] / rec.inputs[0]], 4.0)
SQRT = _unary("sqrt", "square root", lambda F, rec, g: [g[0] * 0.5 / rec.outputs[0]])
NEG = _unary("neg", "-x", lambda F, rec, g: [-g[0]])
ADD = _binary("add", "a + b with NumPy broadcasting", lambda F, rec, g: _binary_grads(F, rec, g[0], g[0]))
SUB = _binary("sub", "a - b with NumPy broadcasting", lambda F, rec, g: _binary_grads(F, rec, g[0], -g[0]))
MUL = _binary("mul", "a * b with NumPy broadcasting",
              lambda F, rec, g: _binary_grads(F, rec, g[0] * rec.inputs[1], g[0] * rec.inputs[0]))
DIV = _binary("div", "a / b with NumPy broadcasting",
              lambda F, rec, g: _binary_grads(F, rec, g[0] / rec.inputs[1], -(g[0] * rec.outputs[0]) / rec.inputs[1]))


def _silu_vjp(F, rec, grads):
    x = rec.inputs[0]
    s = F.sigmoid(x)
    return [grads[0] * s * (1.0 + x * (1.0 - s))]


SILU = _unary("silu", "x * sigmoid(x)", _silu_vjp, 4.0,
              Decomposition(lambda F, x: x * F.sigmoid(x), uses=("sigmoid", "mul")))


def _leaky_relu_vjp(F, rec, grads):
    """dy where x > 0, negative_slope * dy elsewhere (PyTorch's choice at 0)."""
    g, x = grads[0], rec.inputs[0]
    passed = F.relu_backward(g, x)
    return [passed + (g - passed) * rec.attrs["negative_slope"]]


def _leaky_relu(F, x, *, negative_slope):
    return F.relu(x) - F.relu(-x) * negative_slope


LEAKY_RELU = OpSchema(
    name="leaky_relu", family=FAMILY, inputs=(Input("x"),),
    attrs=(Attr("negative_slope", 0.01, to_float),), infer=_infer_unary,
    reference=reference.elementwise.leaky_relu, doc="x where x > 0, else negative_slope * x",
    vjp=_leaky_relu_vjp, decomposition=Decomposition(_leaky_relu, uses=("relu", "neg", "mul", "sub")))


def _infer_relu_backward(op, metas, attrs):
    dy, x = metas
    dtype = float_inputs(op, [("dy", dy), ("x", x)])
    if x.shape != dy.shape:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape}; allowed: {dy.shape}, the shape of dy")
    return [TensorMeta(dy.shape, dtype)], attrs


RELU_BACKWARD = OpSchema(
    name="relu_backward", family=FAMILY, inputs=(Input("dy"), Input("x")), attrs=(), infer=_infer_relu_backward,
    reference=reference.elementwise.relu_backward, doc="dy where x > 0, else 0 (the gradient of relu)",
    # linear in dy, with the same mask: second-order use
    vjp=lambda F, rec, g: [F.relu_backward(g[0], rec.inputs[1]), None])
