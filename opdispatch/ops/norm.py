"""The norm family: batch_norm (PyTorch semantics; training also returns the updated running
statistics), layer_norm (PyTorch semantics, over the trailing axes) and their gradient ops, and
local_response_norm (across channels, PyTorch's window). batch_norm and layer_norm decompose into
reductions and elementwise ops; local_response_norm into a channel-window average pool and
elementwise ops."""

from __future__ import annotations

from .. import reference
from ..attrs import FLOAT, POSITIVE_INT, SHAPE, _is_int, to_bool, to_float, to_int
from ..errors import ShapeError, arg_error
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


EPS_ATTR = Attr("eps", 1e-5, lambda op, arg, v: to_float(op, arg, v, low=0.0, low_open=True), FLOAT)

BATCH_NORM = OpSchema(
    name="batch_norm", family=FAMILY,
    inputs=(Input("x"), Input("running_mean"), Input("running_var"), Input("weight", optional=True),
            Input("bias", optional=True)),
    attrs=(Attr("training", False, to_bool),
           Attr("momentum", 0.1, lambda op, arg, v: to_float(op, arg, v, low=0.0, high=1.0), FLOAT),
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


# -- layer_norm -------------------------------------------------------------------------------------

def _normalized_shape(op, arg, value):
    """One int or a non-empty sequence of ints >= 1, as a tuple."""
    if _is_int(value):
        value = (value,)
    if isinstance(value, (tuple, list)) and value and all(_is_int(v) and v >= 1 for v in value):
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, "an int >= 1 or a non-empty sequence of ints >= 1 (the trailing dimensions of x)")


def check_layer_inputs(op: str, x: TensorMeta, shape: tuple, affine: list) -> None:
    """x's trailing dimensions must be ``shape``; weight and bias (``[(name, meta or None)]``) of shape ``shape``."""
    if len(x.shape) < len(shape) or tuple(x.shape[len(x.shape) - len(shape):]) != shape:
        raise ShapeError(f"{op}: argument 'normalized_shape' got {shape}, which is not the trailing dimensions of x "
                         f"{x.shape}; allowed: x.shape[-{len(shape)}:] == normalized_shape")
    for name, meta in affine:
        if meta is not None and tuple(meta.shape) != shape:
            raise ShapeError(f"{op}: argument {name!r} got shape {meta.shape}; allowed: {shape}, the normalized_shape")


def _infer_layer_norm(op, metas, attrs):
    x, weight, bias = metas
    named = [("weight", weight), ("bias", bias)]
    dtype = float_inputs(op, [("x", x)] + named)
    check_layer_inputs(op, x, attrs["normalized_shape"], named)
    return [TensorMeta(x.shape, dtype)], attrs


def _trailing(x, normalized_shape) -> tuple:
    n = len(x.shape)
    return tuple(range(n - len(normalized_shape), n))


def _layer_norm(F, x, weight=None, bias=None, *, normalized_shape, eps):
    axes = _trailing(x, normalized_shape)
    xc = x - F.mean(x, axis=axes, keepdims=True)
    y = xc / F.sqrt(F.mean(xc * xc, axis=axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _layer_norm_vjp(F, rec, grads):
    x, weight, bias = rec.inputs
    dy = grads[0]
    if dy is None:
        return [None, None, None]
    dx, dw, db = F.layer_norm_backward(x, dy, weight, **rec.attrs)
    return [dx, dw if weight is not None else None, db if bias is not None else None]


def _normalized_count(metas, attrs):
    return prod(attrs["normalized_shape"])


LN_ATTRS = (Attr("normalized_shape", None, _normalized_shape, SHAPE), EPS_ATTR)

LAYER_NORM = OpSchema(
    name="layer_norm", family=FAMILY,
    inputs=(Input("x"), Input("weight", optional=True), Input("bias", optional=True)),
    attrs=LN_ATTRS,
    infer=_infer_layer_norm,
    reference=reference.norm.layer_norm,
    doc="Normalise x over its trailing len(normalized_shape) axes (biased variance), then weight * y + bias.",
    reduction_length=_normalized_count,
    # A row whose values nearly agree (std ~ sqrt(eps)) magnifies the rounding of its mean by |x| / sqrt(var + eps):
    # with 2 or 3 values per row that happens in the grid, so layer_norm gets 4x batch_norm's factor.
    tolerance_factor=16.0,
    vjp=_layer_norm_vjp,
    decomposition=Decomposition(_layer_norm, uses=("mean", "sub", "mul", "add", "sqrt", "div")),
)


def _infer_layer_norm_backward(op, metas, attrs):
    x, dy, weight = metas
    dtype = float_inputs(op, [("x", x), ("dy", dy), ("weight", weight)])
    shape = attrs["normalized_shape"]
    check_layer_inputs(op, x, shape, [("weight", weight)])
    if dy.shape != x.shape:
        raise ShapeError(f"{op}: argument 'dy' got shape {dy.shape}; allowed: {x.shape}, the shape of x")
    stat = TensorMeta(shape, dtype)
    return [TensorMeta(x.shape, dtype), stat, stat], attrs


def _layer_norm_backward(F, x, dy, weight=None, *, normalized_shape, eps):
    axes = _trailing(x, normalized_shape)
    lead = tuple(range(len(x.shape) - len(normalized_shape)))
    xc = x - F.mean(x, axis=axes, keepdims=True)
    invstd = F.div(1.0, F.sqrt(F.mean(xc * xc, axis=axes, keepdims=True) + eps))
    xhat = xc * invstd
    dbias = F.sum(dy, axis=lead) if lead else dy
    dweight = F.sum(dy * xhat, axis=lead) if lead else dy * xhat
    g = dy if weight is None else dy * weight
    # d xhat_k / d x_j = invstd * (delta_jk - 1/M - xhat_j xhat_k / M), M = prod(normalized_shape)
    dx = invstd * (g - F.mean(g, axis=axes, keepdims=True) - xhat * F.mean(g * xhat, axis=axes, keepdims=True))
    return dx, dweight, dbias


def _ln_terms(metas, attrs):
    x = metas[0]
    return max(prod(attrs["normalized_shape"]), prod(x.shape[:len(x.shape) - len(attrs["normalized_shape"])]))


LAYER_NORM_BACKWARD = OpSchema(
    name="layer_norm_backward", family=FAMILY,
    inputs=(Input("x"), Input("dy"), Input("weight", optional=True)),
    attrs=LN_ATTRS,
    infer=_infer_layer_norm_backward,
    reference=reference.norm.layer_norm_backward,
    doc="Gradients (dx, dweight, dbias) of layer_norm's y (dweight and dbias of shape normalized_shape, summed "
        "over the leading axes).",
    reduction_length=_ln_terms,
    tolerance_factor=4.0,
    no_vjp="layer_norm_backward has no gradient rule yet (second derivatives through layer norm)",
    decomposition=Decomposition(_layer_norm_backward, uses=("mean", "sub", "mul", "add", "sqrt", "div", "sum")),
)


# -- local_response_norm --------------------------------------------------------------------------

def lrn_window(size: int) -> tuple[int, int]:
    """The channels (before, after) channel c that its window covers: PyTorch's ``size // 2`` before and
    ``(size - 1) // 2`` after (ONNX LRN's for odd sizes; for even sizes ONNX's window is this one mirrored)."""
    return size // 2, (size - 1) // 2


def _infer_lrn(op, metas, attrs):
    (x,) = metas
    dtype = float_inputs(op, [("x", x)])
    require_min_rank(op, "x", x, 3, "(N, C, ...), normalised across channels (axis 1)")
    require_positive_dims_but_batch(op, "x", x)
    return [TensorMeta(x.shape, dtype)], attrs


def _channel_mean(F, v, size, before, after):
    """The mean of ``size`` channels of v (N, C, ...) over each window (zeros past the edges), as one
    average pool of v viewed as (N, 1, C, S) with a (size, 1) window."""
    shape = tuple(v.shape)
    flat = F.reshape(v, (shape[0], 1, shape[1], prod(shape[2:])))
    pooled = F.avg_pool2d(flat, kernel_size=(size, 1), stride=1, padding=((before, after), (0, 0)),
                          count_include_pad=True)
    return F.reshape(pooled, shape)


def _lrn_denominator(F, x, size, alpha, k):
    """k + alpha / size * (sum of x^2 over the window)."""
    before, after = lrn_window(size)
    return _channel_mean(F, x * x, size, before, after) * alpha + k


def _local_response_norm(F, x, *, size, alpha, beta, k):
    d = _lrn_denominator(F, x, size, alpha, k)
    return x * F.exp(F.log(d) * -beta)


def _lrn_vjp(F, rec, grads):
    """y = x d^-beta with d = k + alpha mean_w(x^2): dx = g d^-beta - 2 alpha beta x mean_w^T(g y / d), where
    mean_w^T, the adjoint of the window mean, is the window mean with the window mirrored."""
    (x,), a = rec.inputs, rec.attrs
    g, y = grads[0], rec.outputs[0]
    size, alpha, beta = a["size"], a["alpha"], a["beta"]
    d = _lrn_denominator(F, x, size, alpha, a["k"])
    before, after = lrn_window(size)
    back = _channel_mean(F, g * y / d, size, after, before)
    return [g * F.exp(F.log(d) * -beta) - x * back * (2.0 * alpha * beta)]


def _lrn_terms(metas, attrs):
    return attrs["size"]


LOCAL_RESPONSE_NORM = OpSchema(
    name="local_response_norm", family=FAMILY,
    inputs=(Input("x"),),
    attrs=(Attr("size", None, lambda op, arg, v: to_int(op, arg, v, minimum=1), POSITIVE_INT),
           Attr("alpha", 1e-4, to_float), Attr("beta", 0.75, to_float), Attr("k", 1.0, to_float)),
    infer=_infer_lrn,
    reference=reference.norm.local_response_norm,
    doc="x / (k + alpha / size * sum of x^2 over a window of size channels) ** beta; the window of channel c is "
        "c - size // 2 ... c + (size - 1) // 2 (PyTorch's), zeros past the edges.",
    reduction_length=_lrn_terms,
    tolerance_factor=4.0,
    vjp=_lrn_vjp,
    decomposition=Decomposition(_local_response_norm, uses=("mul", "reshape", "avg_pool2d", "add", "log", "exp")),
)
