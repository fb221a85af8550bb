"""The elementwise family: unary ops (relu, sigmoid, tanh, exp, log, sqrt, neg, silu, leaky_relu, clip,
hardsigmoid, hardswish, erf, gelu, abs), broadcasting binary ops (add, sub, mul, div, pow, maximum,
minimum), the relu gradient and cast (dtype conversion)."""

from __future__ import annotations

import math

import numpy as np

from .. import reference
from ..attrs import OPTIONAL_FLOAT, KernelForm, one_of, to_float
from ..errors import DTypeError, ShapeError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import float_inputs
from ._rules import unbroadcast

FAMILY = "elementwise"


def _infer_unary(op, metas, attrs):
    (x,) = metas
    float_inputs(op, [("x", x)])
    return [x], attrs


def _infer_binary(op, metas, attrs, names=("a", "b")):
    a, b = metas
    dtype = float_inputs(op, [(names[0], a), (names[1], b)])
    shape = broadcast_shapes(a.shape, b.shape)
    if shape is None:
        raise ShapeError(f"{op}: arguments {names[0]!r} {a.shape} and {names[1]!r} {b.shape} do not broadcast; "
                         f"allowed: shapes whose trailing dimensions are equal or 1 (NumPy broadcasting)")
    return [TensorMeta(shape, dtype)], attrs


def _infer_pow(op, metas, attrs):
    return _infer_binary(op, metas, attrs, ("x", "y"))


def _unary(name: str, doc: str, vjp, tolerance_factor: float = 1.0, decomposition=None) -> OpSchema:
    return OpSchema(name=name, family=FAMILY, inputs=(Input("x"),), attrs=(), infer=_infer_unary,
                    reference=getattr(reference.elementwise, name), doc=doc, tolerance_factor=tolerance_factor,
                    vjp=vjp, decomposition=decomposition)


def _binary(name: str, doc: str, vjp, inputs: tuple[str, str] = ("a", "b"), tolerance_factor: float = 1.0,
            decomposition=None) -> OpSchema:
    return OpSchema(name=name, family=FAMILY, inputs=(Input(inputs[0]), Input(inputs[1])), attrs=(),
                    infer=_infer_binary if inputs == ("a", "b") else _infer_pow,
                    reference=getattr(reference.elementwise, name), doc=doc, vjp=vjp,
                    tolerance_factor=tolerance_factor, decomposition=decomposition)


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


# -- the CNN-zoo elementwise ops: clip, hard sigmoid/swish, erf, gelu, abs, pow, maximum, minimum --------
#
# Masks in the gradient rules are built from relu_backward (``dy where x > 0, else 0``, whatever dy is,
# inf and NaN included): ``relu_backward(g, x - c)`` passes g where x > c, and the sign of a difference of
# two floats is exact (it is 0 only when they are equal, +-inf on overflow), so these masks are exact.


def _passes_above(F, g, x, c):
    """g where x > c, else 0."""
    return F.relu_backward(g, x - c)


def _passes_below(F, g, x, c):
    """g where x < c, else 0."""
    return F.relu_backward(g, c - x)


def _optional_float(op, arg, value):
    return None if value is None else to_float(op, arg, value)


def _clip_vjp(F, rec, grads):
    """g where min <= x <= max, else 0 (PyTorch's clamp: the boundaries pass the gradient; NaN passes
    it too); 0 everywhere when min > max (the output is the constant max)."""
    g, x = grads[0], rec.inputs[0]
    lo, hi = rec.attrs["min"], rec.attrs["max"]
    if lo is not None and hi is not None and lo > hi:
        return [g * 0.0]
    out = g
    if lo is not None:
        out = out - _passes_below(F, g, x, lo)
    if hi is not None:
        out = out - _passes_above(F, g, x, hi)
    return [out]


def _clip(F, x, *, min, max):  # noqa: A002 - the attribute names of API.md (np.clip's a_min, a_max)
    """minimum(maximum(x, min), max): NaN propagates, and min > max gives max, as np.clip."""
    if min is not None:
        x = F.maximum(x, min)
    if max is not None:
        x = F.minimum(x, max)
    return x if min is not None or max is not None else x * 1.0


CLIP = OpSchema(
    name="clip", family=FAMILY, inputs=(Input("x"),),
    attrs=(Attr("min", None, _optional_float, OPTIONAL_FLOAT), Attr("max", None, _optional_float, OPTIONAL_FLOAT)),
    infer=_infer_unary,
    reference=reference.elementwise.clip, doc="x limited to [min, max] (None: unbounded; NaN stays NaN)",
    vjp=_clip_vjp, decomposition=Decomposition(_clip, uses=("maximum", "minimum", "mul")))


def _hardsigmoid_vjp(F, rec, grads):
    """g / 6 where -3 < x < 3, else 0 (PyTorch: no gradient at the kinks)."""
    g, x = grads[0], rec.inputs[0]
    return [_passes_below(F, _passes_above(F, g, x, -3.0), x, 3.0) / 6.0]


# tolerance factor 2: kernels compute x / 6 + 1/2 (PyTorch), the reference (x + 3) / 6: two roundings apart
HARDSIGMOID = _unary("hardsigmoid", "relu6(x + 3) / 6 (PyTorch's hardsigmoid)", _hardsigmoid_vjp, 2.0,
                     Decomposition(lambda F, x: F.clip(x + 3.0, min=0.0, max=6.0) / 6.0,
                                   uses=("add", "clip", "div")))


def _hardswish_vjp(F, rec, grads):
    """g * (x / 3 + 1/2) where -3 <= x <= 3, g where x > 3, 0 where x < -3 (PyTorch's rule, the
    kinks included: -g/2 at x = -3, 3g/2 at x = 3)."""
    g, x = grads[0], rec.inputs[0]
    above = _passes_above(F, g, x, 3.0)
    inside = g - _passes_below(F, g, x, -3.0) - above
    slope = F.clip(x, min=-3.0, max=3.0) / 3.0 + 0.5  # finite wherever x is not NaN
    return [inside * slope + above]


# tolerance factor 2: x * (x + 3) / 6, three roundings (x + 3 is exact near -3, no cancellation)
HARDSWISH = _unary("hardswish", "x * hardsigmoid(x) (PyTorch's hardswish; 0 at -inf)", _hardswish_vjp, 2.0,
                   # max(x, -3) instead of x: the same product wherever hardsigmoid(x) > 0, and 0 (not NaN) at -inf
                   Decomposition(lambda F, x: F.maximum(x, -3.0) * F.hardsigmoid(x),
                                 uses=("maximum", "hardsigmoid", "mul")))

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_GELU_BETA = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")
_GELU_FLOOR = -40.0
"""Below it Phi(x) is 0 in every dtype (Phi(-40) ~ 1e-350): x is clamped to it in the factor x of
x * Phi(x), so that gelu(-inf) is 0 (the limit) and not -inf * 0."""


def _erf_vjp(F, rec, grads):
    """g * 2 / sqrt(pi) * exp(-x^2)."""
    x = rec.inputs[0]
    return [grads[0] * (F.exp(-(x * x)) * (2.0 / math.sqrt(math.pi)))]


ERF = _unary("erf", "the error function", _erf_vjp, 4.0)


def _approximate(op, arg, value):
    if not isinstance(value, str) or value not in GELU_APPROXIMATIONS:
        raise arg_error(op, arg, value, ", ".join(map(repr, GELU_APPROXIMATIONS)))
    return value


def _gelu(F, x, *, approximate):
    """x * Phi(x): Phi(x) = (1 + erf(x / sqrt 2)) / 2, or PyTorch's tanh approximation
    (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2."""
    if approximate == "tanh":
        phi = 0.5 + 0.5 * F.tanh(_GELU_BETA * (x + _GELU_KAPPA * (x * x * x)))
    else:
        phi = 0.5 + 0.5 * F.erf(x / math.sqrt(2.0))
    return F.maximum(x, _GELU_FLOOR) * phi


def _gelu_vjp(F, rec, grads):
    """Phi(x) + x * Phi'(x) (PyTorch's gelu_backward for both approximations)."""
    g, x = grads[0], rec.inputs[0]
    if rec.attrs["approximate"] == "tanh":
        inner = F.tanh(_GELU_BETA * (x + _GELU_KAPPA * (x * x * x)))
        d_inner = _GELU_BETA * (1.0 + 3.0 * _GELU_KAPPA * (x * x))
        slope = 0.5 * (1.0 + inner) + 0.5 * x * (1.0 - inner * inner) * d_inner
    else:
        slope = 0.5 + 0.5 * F.erf(x / math.sqrt(2.0)) + x * (F.exp(-0.5 * (x * x)) / _SQRT_2PI)
    return [g * slope]


GELU = OpSchema(
    name="gelu", family=FAMILY, inputs=(Input("x"),),
    attrs=(Attr("approximate", "none", _approximate, one_of(*GELU_APPROXIMATIONS)),),
    infer=_infer_unary, reference=reference.elementwise.gelu,
    tolerance_factor=4.0,  # erf or tanh (a few ulps), then three rounded operations
    doc="x * Phi(x), Phi the standard normal CDF (approximate='none') or PyTorch's tanh approximation",
    vjp=_gelu_vjp, decomposition=Decomposition(_gelu, uses=("erf", "tanh", "maximum", "mul", "add", "div")))

ABS = _unary("abs", "|x|",  # gradient sign(x) * g, 0 at 0
             lambda F, rec, g: [F.relu_backward(g[0], rec.inputs[0]) - F.relu_backward(g[0], -rec.inputs[0])], 1.0,
             Decomposition(lambda F, x: F.relu(x) + F.relu(-x), uses=("relu", "neg", "add")))


def _pow_vjp(F, rec, grads):
    """d/dx: y * x ** (y - 1), 0 where y == 0 (PyTorch, also at x == 0); d/dy: log(x) * x ** y, 0 where
    x == 0 (PyTorch gives 0 there for y >= 0, and the non-finite log(0) * 0 ** y for y < 0, where the
    derivative does not exist); NaN for x < 0 (log of a negative number), as PyTorch."""
    g = grads[0]
    (x, y), out = rec.inputs, rec.outputs[0]
    dx = dy = None
    if rec.wants(0):
        p = g * y * F.pow(x, y - 1.0)
        yb = y if y.shape == out.shape else F.broadcast_to(y, out.shape)
        dx = F.relu_backward(p, yb) + F.relu_backward(p, -yb)
    if rec.wants(1):
        q = g * F.log(x) * out
        xb = x if x.shape == out.shape else F.broadcast_to(x, out.shape)
        dy = F.relu_backward(q, xb) + F.relu_backward(q, -xb)
    return [None if dx is None else unbroadcast(F, dx, x.shape), None if dy is None else unbroadcast(F, dy, y.shape)]


POW = _binary("pow", "x ** y with NumPy broadcasting (NaN for a negative x with a non-integer y)", _pow_vjp,
              inputs=("x", "y"), tolerance_factor=4.0)  # OpenCL's pow may be 16 ulps off (float32)


def _extremum_vjp(F, rec, grads, sign):
    """g to the larger input of maximum (sign +1; the smaller of minimum, sign -1), half of it to each
    where they are equal (PyTorch's rule for torch.maximum/minimum; also where either is NaN)."""
    g = grads[0]
    a, b = rec.inputs
    d = a - b if sign > 0 else b - a  # > 0 where a wins, < 0 where b wins, 0 or NaN at ties and NaN
    wins_a, wins_b = F.relu_backward(g, d), F.relu_backward(g, -d)
    half = (g - wins_a - wins_b) * 0.5
    return _binary_grads(F, rec, wins_a + half, wins_b + half)


def _maximum(F, a, b):
    """The larger of a and b by a max over a new first axis of the two broadcast inputs: exact, and NaN
    propagates as in np.maximum."""
    shape = tuple(broadcast_shapes(a.shape, b.shape) or ())  # validated by the schema: never None here
    both = F.concat([F.reshape(F.broadcast_to(t, shape), (1,) + shape) for t in (a, b)], axis=0)
    return F.max(both, axis=0)


MAXIMUM = _binary("maximum", "the larger of a and b, NumPy broadcasting (NaN propagates)",
                  lambda F, rec, g: _extremum_vjp(F, rec, g, 1),
                  decomposition=Decomposition(_maximum, uses=("broadcast_to", "reshape", "concat", "max")))
MINIMUM = _binary("minimum", "the smaller of a and b, NumPy broadcasting (NaN propagates)",
                  lambda F, rec, g: _extremum_vjp(F, rec, g, -1),
                  decomposition=Decomposition(lambda F, a, b: -_maximum(F, -a, -b),
                                              uses=("neg", "broadcast_to", "reshape", "concat", "max")))


# -- cast: a tensor's values in another dtype (Tensor.astype) -------------------------------------------

CAST_DTYPES = ("float16", "float32", "float64", "int32", "int64", "bool")
"""The dtypes ``cast`` converts from and to."""


def _cast_dtype(op, arg, value):
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in CAST_DTYPES:
        raise arg_error(op, arg, value, ", ".join(CAST_DTYPES) + " (a NumPy dtype or its name)")
    return name


CAST_FORM = KernelForm(f"a dtype name: {', '.join(map(repr, CAST_DTYPES[:-1]))} or {CAST_DTYPES[-1]!r}",
                       lambda v, m: v in CAST_DTYPES)


def _infer_cast(op, metas, attrs):
    (x,) = metas
    if x.dtype.name not in CAST_DTYPES:
        raise DTypeError(f"{op}: argument 'x' got dtype {x.dtype.name}; allowed: {', '.join(CAST_DTYPES)}")
    return [TensorMeta(x.shape, np.dtype(attrs["dtype"]))], attrs


def _cast_vjp(F, rec, grads):
    """float -> float: the gradient cast back to the input's dtype; none through an int or bool side
    (integers are piecewise constant in a float input)."""
    x, y = rec.inputs[0], rec.outputs[0]
    if x.dtype.kind != "f" or y.dtype.kind != "f":
        return [None]
    return [F.cast(grads[0], dtype=x.dtype.name)]


CAST = OpSchema(
    name="cast", family=FAMILY, inputs=(Input("x", kind="value"),),
    attrs=(Attr("dtype", "float32", _cast_dtype, CAST_FORM),),
    infer=_infer_cast, reference=reference.elementwise.cast,
    doc="x's values in ``dtype`` (as NumPy's astype: floats to ints truncate toward 0, nonzero to True)",
    vjp=_cast_vjp)
