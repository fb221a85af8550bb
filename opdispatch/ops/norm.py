"""The norm family: batch_norm (PyTorch semantics; training also returns the updated running
statistics) and its gradient op. batch_norm decomposes into reductions and elementwise ops."""

from __future__ import annotations

from .. import reference
from ..attrs import to_bool, to_float
from ..errors import ShapeError
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta
from ._checks import float_inputs, prod, require_min_rank, require_positive_dims_but_batch, require_rank
from ._rules import add_grads

FAMILY = "norm"


def check_batch_inputs(op: str, x: TensorMeta, per_channel: list, training: bool) -> None:
    """Validate x (N, C, ...) and its per-channel vectors ``[(name, meta or None)]``; in training,
    require the 2 values per channel the unbiased variance needs."""
    require_min_rank(op, "x", x, 2, "(N, C, ...)")
    require_positive_dims_but_batch(op, "x", x)
    c = x.shape[1]
    for name, meta in per_channel:
        if meta is not None:
            require_rank(op, name, meta, 1, "(C,)")
            if meta.shape[0] != c:
                raise ShapeError(f"{op}: argument {name!r} got shape {meta.shape}; allowed: ({c},), one per "
                                 f"channel of x {x.shape}")
    count = x.shape[0] * prod(x.shape[2:])
    if training and count < 2:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape}: {count} value(s) per channel; allowed: at least "
                         f"2 values per channel in training (the unbiased variance divides by count - 1)")


def _infer(op, metas, attrs):
    x, rm, rv, weight, bias = metas
    named = [("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)]
    dtype = float_inputs(op, [("x", x)] + named)
    check_batch_inputs(op, x, named, attrs["training"])
    out = TensorMeta(x.shape, dtype)
    if not attrs["training"]:
        return [out], attrs
    stat = TensorMeta((x.shape[1],), dtype)
    return [out, stat, stat], attrs


def _count(metas, attrs):
    x = metas[0]
    return x.shape[0] * prod(x.shape[2:]) if attrs["training"] else 1


def _channel_shape(x) -> tuple:
    return (1, x.shape[1]) + (1,) * (len(x.shape) - 2)


def _batch_norm(F, x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    bshape = _channel_shape(x)
    axes = (0,) + tuple(range(2, len(x.shape)))
    if training:
        mean = F.mean(x, axis=axes)
        xc = x - F.reshape(mean, bshape)
        var = F.mean(xc * xc, axis=axes)
    else:
        mean, var = running_mean, running_var
        xc = x - F.reshape(mean, bshape)
    y = xc / F.reshape(F.sqrt(var + eps), bshape)
    if weight is not None:
        y = y * F.reshape(weight, bshape)
    if bias is not None:
        y = y + F.reshape(bias, bshape)
    if not training:
        return y
    count = x.size // x.shape[1]
    new_mean = running_mean * (1.0 - momentum) + mean * momentum
    new_var = running_var * (1.0 - momentum) + var * (momentum * count / (count - 1))
    return y, new_mean, new_var


def _batch_norm_vjp(F, rec, grads):
    x, rm, rv, weight, bias = rec.inputs
    a = rec.attrs
    dy = grads[0]
    axes = (0,) + tuple(range(2, len(x.shape)))
    bshape = _channel_shape(x)
    dx = dw = db = drm = drv = None
    if dy is not None:
        dx, dw, db = F.batch_norm_backward(x, dy, rm, rv, weight, training=a["training"], eps=a["eps"])
        if not a["training"]:  # y depends on the running statistics
            invstd = F.div(1.0, F.sqrt(rv + a["eps"]))
            scale = invstd if weight is None else weight * invstd
            drm = -F.sum(dy, axis=axes) * scale
            xc = x - F.reshape(rm, bshape)
            drv = F.sum(dy * xc, axis=axes) * scale * invstd * invstd * -0.5
    if a["training"] and len(grads) == 3 and (grads[1] is not None or grads[2] is not None):
        m = a["momentum"]
        count = x.size // x.shape[1]
        gm, gv = grads[1], grads[2]
        if gm is not None:  # new_mean = (1 - m) rm + m mean(x)
            drm = gm * (1 - m)
            dx = add_grads(dx, F.broadcast_to(F.reshape(gm * (m / count), bshape), x.shape))
        if gv is not None:  # new_var = (1 - m) rv + m var(x) count / (count - 1)
            drv = add_grads(drv, gv * (1 - m))
            xc = x - F.mean(x, axis=axes, keepdims=True)
            dx = add_grads(dx, xc * F.reshape(gv * (2 * m / (count - 1)), bshape))
    return [dx, drm, drv, dw if weight is not None else None, db if bias is not None else None]


EPS_ATTR = Attr("eps", 1e-5, lambda op, arg, v: to_float(op, arg, v, low=0.0, low_open=True))

BATCH_NORM = OpSchema(
    name="batch_norm", family=FAMILY,
    inputs=(Input("x"), Input("running_mean"), Input("running_var"), Input("weight", optional=True),
            Input("bias", optional=True)),
    attrs=(Attr("training", False, to_bool),
           Attr("momentum", 0.1, lambda op, arg, v: to_float(op, arg, v, low=0.0, high=1.0)),
           EPS_ATTR),
    infer=_infer,
    reference=reference.norm.batch_norm,
    doc="Normalise x per channel (axis 1); training also returns (new_running_mean, new_running_var).",
    reduction_length=_count,
    tolerance_factor=4.0,
    vjp=_batch_norm_vjp,
    decomposition=Decomposition(_batch_norm, uses=("mean", "sub", "mul", "reshape", "add", "sqrt", "div")),
)


def _infer_batch_norm_backward(op, metas, attrs):
    x, dy, rm, rv, weight = metas
    named = [("running_mean", rm), ("running_var", rv), ("weight", weight)]
    dtype = float_inputs(op, [("x", x), ("dy", dy)] + named)
    check_batch_inputs(op, x, named, attrs["training"])
    if dy.shape != x.shape:
        raise ShapeError(f"{op}: argument 'dy' got shape {dy.shape}; allowed: {x.shape}, the shape of x")
    stat = TensorMeta((x.shape[1],), dtype)
    return [TensorMeta(x.shape, dtype), stat, stat], attrs


def _bn_terms(metas, attrs):
    x = metas[0]
    return x.shape[0] * prod(x.shape[2:])


BATCH_NORM_BACKWARD = OpSchema(
    name="batch_norm_backward", family=FAMILY,
    inputs=(Input("x"), Input("dy"), Input("running_mean"), Input("running_var"), Input("weight", optional=True)),
    attrs=(Attr("training", False, to_bool), EPS_ATTR),
    infer=_infer_batch_norm_backward,
    reference=reference.norm.batch_norm_backward,
    doc="Gradients (dx, dweight, dbias) of batch_norm's y; training differentiates through the batch "
        "statistics.",
    reduction_length=_bn_terms,
    tolerance_factor=4.0,
    no_vjp="batch_norm_backward has no gradient rule yet (second derivatives through batch norm)",
)
