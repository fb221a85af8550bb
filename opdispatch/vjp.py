"""Vector-Jacobian product rules, one per op: ``rule(record, output_grads) -> input grads``.

Each rule receives the recorded call (its input and output tensors and kernel attributes) and
the gradient of each output (None where no gradient flows) and returns one gradient per input
(None for inputs that get none, such as integer labels). Rules are written with ops, so they
run on the device of the forward pass; conv, pooling, batch norm and a few others call backward
ops that have schemas of their own, so every backend implements and the conformance suite checks
them like any other op.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from . import api
from . import grad_api as ga
from .tensor import Tensor

Grads = Sequence[Optional[Tensor]]
Rule = Callable[..., list]


def unbroadcast(g: Tensor, shape: tuple) -> Tensor:
    """Sum ``g`` over the axes NumPy broadcasting added or stretched to reach ``g.shape`` from ``shape``."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    return api.reshape(api.sum(g, axis=axes), shape) if axes else api.reshape(g, shape)


def wants(rec, i: int) -> bool:
    """Whether the gradient of input ``i`` of the recorded call is needed (rules may skip the others)."""
    return rec.needs is None or bool(rec.needs[i])


def _conv2d(rec, grads):
    x, w, bias = rec.inputs
    (dy,) = grads
    a = rec.attrs
    dx = ga.conv2d_backward_input(dy, w, input_shape=x.shape, **a) if wants(rec, 0) else None
    dw = ga.conv2d_backward_weight(x, dy, weight_shape=w.shape, **a) if wants(rec, 1) else None
    db = api.sum(dy, axis=(0, 2, 3)) if bias is not None and wants(rec, 2) else None
    return [dx, dw, db]


def _conv2d_bias_relu(rec, grads):
    return _conv2d(rec, [ga.relu_backward(grads[0], rec.outputs[0])])  # y > 0 exactly where conv2d's output is


def _without(attrs, *names: str) -> dict:
    return {k: v for k, v in attrs.items() if k not in names}


def _conv2d_backward_input(rec, grads):
    """dx = conv2d_backward_input(dy, w) is bilinear: its adjoints are conv2d and the weight gradient."""
    dy, w = rec.inputs
    a = _without(rec.attrs, "input_shape")
    g = grads[0]
    return [api.conv2d(g, w, **a) if wants(rec, 0) else None,
            ga.conv2d_backward_weight(g, dy, weight_shape=w.shape, **a) if wants(rec, 1) else None]


def _conv2d_backward_weight(rec, grads):
    """dw = conv2d_backward_weight(x, dy) is bilinear: its adjoints are the input gradient and conv2d."""
    x, dy = rec.inputs
    a = _without(rec.attrs, "weight_shape")
    g = grads[0]
    return [ga.conv2d_backward_input(dy, g, input_shape=x.shape, **a) if wants(rec, 0) else None,
            api.conv2d(x, g, **a) if wants(rec, 1) else None]


def _avg_pool2d_backward(rec, grads):
    """avg_pool2d_backward is linear in dy; its adjoint is avg_pool2d itself."""
    return [api.avg_pool2d(grads[0], **_without(rec.attrs, "input_shape"))]


def _max_pool2d(rec, grads):
    return [ga.max_pool2d_backward(rec.inputs[0], grads[0], **rec.attrs)]


def _avg_pool2d(rec, grads):
    return [ga.avg_pool2d_backward(grads[0], input_shape=rec.inputs[0].shape, **rec.attrs)]


def _channel_shape(x: Tensor) -> tuple:
    return (1, x.shape[1]) + (1,) * (len(x.shape) - 2)


def _batch_norm(rec, grads):
    x, rm, rv, weight, bias = rec.inputs
    a = rec.attrs
    dy = grads[0]
    axes = (0,) + tuple(range(2, len(x.shape)))
    bshape = _channel_shape(x)
    dx = dw = db = drm = drv = None
    if dy is not None:
        dx, dw, db = ga.batch_norm_backward(x, dy, rm, rv, weight, training=a["training"], eps=a["eps"])
        if not a["training"]:  # y depends on the running statistics
            invstd = api.div(1.0, api.sqrt(rv + a["eps"]))
            scale = invstd if weight is None else weight * invstd
            drm = -api.sum(dy, axis=axes) * scale
            xc = x - api.reshape(rm, bshape)
            drv = api.sum(dy * xc, axis=axes) * scale * invstd * invstd * -0.5
    if a["training"] and len(grads) == 3 and (grads[1] is not None or grads[2] is not None):
        m = a["momentum"]
        count = x.size // x.shape[1]
        gm, gv = grads[1], grads[2]
        if gm is not None:  # new_mean = (1 - m) rm + m mean(x)
            drm = gm * (1 - m)
            dx = _add(dx, ga.broadcast_to(api.reshape(gm * (m / count), bshape), x.shape))
        if gv is not None:  # new_var = (1 - m) rv + m var(x) count / (count - 1)
            drv = _add(drv, gv * (1 - m))
            xc = x - api.mean(x, axis=axes, keepdims=True)
            dx = _add(dx, xc * api.reshape(gv * (2 * m / (count - 1)), bshape))
    return [dx, drm, drv, dw if weight is not None else None, db if bias is not None else None]


def _add(a: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
    return b if a is None else a if b is None else a + b


def _matmul(rec, grads):
    a, b = rec.inputs
    (dy,) = grads
    a2 = api.reshape(a, (1,) + a.shape) if len(a.shape) == 1 else a
    b2 = api.reshape(b, b.shape + (1,)) if len(b.shape) == 1 else b
    batch = dy.shape[:len(dy.shape) - (len(a.shape) > 1) - (len(b.shape) > 1)]
    dy2 = api.reshape(dy, batch + (a2.shape[-2], b2.shape[-1]))
    da = api.reshape(unbroadcast(api.matmul(dy2, _swap_last(b2)), a2.shape), a.shape) if wants(rec, 0) else None
    db = api.reshape(unbroadcast(api.matmul(_swap_last(a2), dy2), b2.shape), b.shape) if wants(rec, 1) else None
    return [da, db]


def _swap_last(t: Tensor) -> Tensor:
    n = len(t.shape)
    return api.transpose(t, tuple(range(n - 2)) + (n - 1, n - 2))


def _reduced_shape(x: Tensor, axis: tuple) -> tuple:
    return tuple(1 if i in axis else d for i, d in enumerate(x.shape))


def _sum(rec, grads):
    x = rec.inputs[0]
    g = api.reshape(grads[0], _reduced_shape(x, rec.attrs["axis"]))
    return [ga.broadcast_to(g, x.shape)]


def _mean(rec, grads):
    x = rec.inputs[0]
    count = 1
    for a in rec.attrs["axis"]:
        count *= x.shape[a]
    g = api.reshape(grads[0], _reduced_shape(x, rec.attrs["axis"]))
    return [ga.broadcast_to(g * (1.0 / count), x.shape)]


def _transpose(rec, grads):
    axes = rec.attrs["axes"]
    inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return [api.transpose(grads[0], inverse)]


def _softmax(rec, grads):
    (y,), (dy,) = rec.outputs, grads
    axis = rec.attrs["axis"]
    return [y * (dy - api.sum(dy * y, axis=axis, keepdims=True))]


def _log_softmax(rec, grads):
    (y,), (dy,) = rec.outputs, grads
    return [dy - api.exp(y) * api.sum(dy, axis=rec.attrs["axis"], keepdims=True)]


def _reshape_back(rec, grads):
    return [api.reshape(grads[0], rec.inputs[0].shape)]


def _binary(rec, grads, da, db):
    a, b = rec.inputs
    return [unbroadcast(da, a.shape), unbroadcast(db, b.shape)]


VJP: dict[str, Rule] = {
    "conv2d": _conv2d,
    "conv2d_bias_relu": _conv2d_bias_relu,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "batch_norm": _batch_norm,
    "matmul": _matmul,
    "relu": lambda rec, g: [ga.relu_backward(g[0], rec.inputs[0])],
    "sigmoid": lambda rec, g: [g[0] * rec.outputs[0] * (1.0 - rec.outputs[0])],
    "tanh": lambda rec, g: [g[0] * (1.0 - rec.outputs[0] * rec.outputs[0])],
    "exp": lambda rec, g: [g[0] * rec.outputs[0]],
    "log": lambda rec, g: [g[0] / rec.inputs[0]],
    "sqrt": lambda rec, g: [g[0] * 0.5 / rec.outputs[0]],
    "neg": lambda rec, g: [-g[0]],
    "add": lambda rec, g: _binary(rec, g, g[0], g[0]),
    "sub": lambda rec, g: _binary(rec, g, g[0], -g[0]),
    "mul": lambda rec, g: _binary(rec, g, g[0] * rec.inputs[1], g[0] * rec.inputs[0]),
    "div": lambda rec, g: _binary(rec, g, g[0] / rec.inputs[1], -(g[0] * rec.outputs[0]) / rec.inputs[1]),
    "sum": _sum,
    "mean": _mean,
    "max": lambda rec, g: [ga.max_backward(rec.inputs[0], g[0], **rec.attrs)],
    "reshape": _reshape_back,
    "flatten": _reshape_back,
    "transpose": _transpose,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmax_cross_entropy": lambda rec, g: [ga.softmax_cross_entropy_backward(*rec.inputs, g[0]), None],
    "broadcast_to": lambda rec, g: [unbroadcast(g[0], rec.inputs[0].shape)],
    # backward ops that are linear in the incoming gradient: second-order use
    "relu_backward": lambda rec, g: [ga.relu_backward(g[0], rec.inputs[1]), None],
    "conv2d_backward_input": _conv2d_backward_input,
    "conv2d_backward_weight": _conv2d_backward_weight,
    "avg_pool2d_backward": _avg_pool2d_backward,
}
