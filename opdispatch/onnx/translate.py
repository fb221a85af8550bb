"""The one translation of ONNX nodes into opdispatch op calls: ONNX op type -> handler.

Used by `opdispatch.onnx.load` (the imported model runs every node through `TRANSLATORS`) and by
the conformance suite's ONNX cases (``opdispatch_conformance.onnx_cases``, which records the op
calls the handlers make and checks them against ONNX's expected outputs). Written from the ONNX
operator specification, opsets 7 to 21 (and the legacy forms of opset < 7 where they differ only
in broadcasting), independently of opdispatch's own helpers (SAME_LOWER padding, for instance, is
computed here, not with ``opdispatch.shapes``).

A handler is ``handler(ex, args, a, opset)``:

* ``ex``, the *executor*: ``ex(op, *inputs, **attrs)`` runs opdispatch op ``op`` (its public
  ``od.<op>`` signature) and returns its result; ``ex.host(v)`` says whether value ``v`` is known
  on the host (a constant of the file, a shape: then shape arithmetic is done with NumPy, never
  on a device); ``ex.feed(array)`` turns a constant of the file into a value; ``ex.scalar(v,
  like)`` a Python number into a value of ``like``'s dtype; ``ex.cast(v, dtype)`` converts a
  device value; ``ex.training`` is the model's mode (Dropout; BatchNormalization's mode is the
  node's own, `bn_training`).
* ``args``: the node's input values in order (None for an omitted optional input).
* ``a``: the node's attributes (`node_attrs`: Python values, strings decoded, ``a.n_outputs``
  the number of outputs the node asks for).
* ``opset``: the version of the default domain the model imports.

It returns one value or a tuple (one per output; outputs a handler does not compute, such as
MaxPool's Indices, are left out). A handler raises `NotImplementedError` for a form of the op
that opdispatch cannot express (3-D convolution, AveragePool with dilations ...).

The od function of each op is looked up only when a node runs, so a translation written for an
op this opdispatch lacks fails only when a model uses it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

Handler = Callable[[Any, list, "NodeAttrs", int], Any]


class NodeAttrs(dict):
    """A node's attributes (name -> Python value) and ``n_outputs``, the number of outputs it asks
    for (trailing omitted ones not counted, inner ones counted)."""

    outputs: tuple = ()

    @property
    def n_outputs(self) -> int:
        """The number of outputs the node asks for (at least 1)."""
        return len(self.outputs) or 1


def node_attrs(node: Any) -> NodeAttrs:
    """The attributes of ONNX ``node`` (an onnx.NodeProto) as Python values (strings decoded)."""
    from onnx import helper  # the caller has onnx: it holds a NodeProto

    out = NodeAttrs()
    for attr in node.attribute:
        v = helper.get_attribute_value(attr)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[attr.name] = v
    outputs = tuple(node.output)
    while outputs and not outputs[-1]:
        outputs = outputs[:-1]
    out.outputs = outputs
    return out


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in v.shape)


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _given(args: list, i: int) -> bool:
    return len(args) > i and args[i] is not None


def _host_array(ex: Any, v: Any, what: str) -> np.ndarray:
    """``v`` as a host array (a NumPy array: a constant or a shape); a value computed on a device
    cannot steer shapes or attributes."""
    if not (ex.host(v) or isinstance(v, (np.ndarray, np.generic))):
        raise NotImplementedError(f"{what} computed on a device (opdispatch needs it as a constant of the file "
                                  f"or a shape)")
    return np.asarray(v)


def _all_host(ex: Any, args: Sequence[Any]) -> bool:
    return all(a is None or ex.host(a) for a in args)


def same_pads(size: int, k: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """ONNX auto_pad SAME_UPPER / SAME_LOWER for one axis (the ONNX spec): output ceil(size / stride),
    total padding ``(out - 1) * stride + dilation * (k - 1) + 1 - size``; an odd total puts the
    extra element at the end (UPPER) or at the beginning (LOWER)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _spatial(what: str, n: int) -> None:
    if n != 2:
        raise NotImplementedError(f"{n}-D {what}: opdispatch's op is 2-D (NCHW)")


def onnx_padding(a: dict, hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> Any:
    """ONNX ``auto_pad``/``pads`` as our ``padding`` argument. ONNX pads are
    [top, left, bottom, right] (all begins, then all ends); ours ((top, bottom), (left, right))."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "VALID"
    if auto == "SAME_UPPER":  # TensorFlow's SAME, which our "SAME" is
        return "SAME"
    if auto == "SAME_LOWER":
        return tuple(same_pads(hw[i], kernel[i], stride[i], dilation[i], lower=True) for i in range(2))
    if auto != "NOTSET":
        raise NotImplementedError(f"auto_pad {auto!r}")
    p = a.get("pads", [0, 0, 0, 0])
    if len(p) != 4:
        raise NotImplementedError(f"pads {list(p)}: opdispatch's ops are 2-D")
    return ((p[0], p[2]), (p[1], p[3]))


# --------------------------------------------------------------------------------------------
# Convolution, pooling, normalisation
# --------------------------------------------------------------------------------------------


def _conv(ex, args, a, opset):
    x, w, b = (list(args) + [None, None])[:3]
    kernel = _shape(w)[2:]
    _spatial("convolution", len(kernel))
    if "kernel_shape" in a:
        if tuple(a["kernel_shape"]) != kernel:
            raise ValueError(f"kernel_shape {a['kernel_shape']} disagrees with the weights {kernel}")
    stride = tuple(a.get("strides", (1, 1)))
    dilation = tuple(a.get("dilations", (1, 1)))
    padding = onnx_padding(a, _shape(x)[2:], kernel, stride, dilation)
    return ex("conv2d", x, w, b, stride=stride, padding=padding, dilation=dilation, groups=a.get("group", 1))


def _conv_transpose(ex, args, a, opset):
    x, w, b = (list(args) + [None, None])[:3]
    kernel = _shape(w)[2:]
    _spatial("transposed convolution", len(kernel))
    stride = tuple(a.get("strides", (1, 1)))
    dilation = tuple(a.get("dilations", (1, 1)))
    out_pad = list(a.get("output_padding", (0, 0)))
    hw = _shape(x)[2:]
    auto = a.get("auto_pad", "NOTSET")
    if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
        # The spec: total_padding = stride * (in - 1) + output_padding + ((k - 1) * dilation + 1) - out,
        # split begin = total // 2 for SAME_UPPER (and for an explicit output_shape), the larger half
        # first for SAME_LOWER; SAME's output is in * stride.
        target = list(a["output_shape"])[-2:] if "output_shape" in a else [hw[i] * stride[i] for i in range(2)]
        pads = []
        for i in range(2):
            total = stride[i] * (hw[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilation[i] + 1 - target[i]
            if total < 0:  # the output asked for is larger: the rest is output padding
                out_pad[i] -= total
                total = 0
            small, big = total // 2, total - total // 2
            pads.append((big, small) if auto == "SAME_LOWER" else (small, big))
        padding: Any = tuple(pads)
    elif auto == "VALID":
        padding = 0
    elif auto == "NOTSET":
        p = a.get("pads", [0, 0, 0, 0])
        padding = ((p[0], p[2]), (p[1], p[3]))
    else:
        raise NotImplementedError(f"auto_pad {auto!r}")
    if isinstance(padding, tuple) and all(pb == pe for pb, pe in padding):
        padding = (padding[0][0], padding[1][0])
    return ex("conv_transpose2d", x, w, b, stride=stride, padding=padding, output_padding=tuple(out_pad),
              dilation=dilation, groups=a.get("group", 1))


def _pool_common(x, a):
    kernel = tuple(a["kernel_shape"])
    _spatial("pooling", len(kernel))
    stride = tuple(a.get("strides", (1, 1)))  # ONNX's default stride is 1, not the kernel size
    dilation = tuple(a.get("dilations", (1, 1)))
    padding = onnx_padding(a, _shape(x)[2:], kernel, stride, dilation)
    return kernel, stride, dilation, padding, bool(a.get("ceil_mode", 0))


def _max_pool(ex, args, a, opset):
    # Only output 0 (the values); an optional Indices output is left uncomputed.
    kernel, stride, dilation, padding, ceil_mode = _pool_common(args[0], a)
    return ex("max_pool2d", args[0], kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)


def _avg_pool(ex, args, a, opset):
    kernel, stride, dilation, padding, ceil_mode = _pool_common(args[0], a)
    if dilation != (1, 1):
        raise NotImplementedError("AveragePool dilations: avg_pool2d has no dilation argument")
    return ex("avg_pool2d", args[0], kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=bool(a.get("count_include_pad", 0)))  # ONNX's default is 0


def _global_pool(op):
    def handler(ex, args, a, opset):
        rank = len(_shape(args[0]))
        return ex(op, args[0], axis=tuple(range(2, rank)), keepdims=True)
    return handler


def bn_training(a: NodeAttrs, opset: int) -> bool:
    """Whether a BatchNormalization node normalises with the batch statistics: the attribute
    ``training_mode`` (opset >= 14), ``is_test == 0`` (opset < 7), else (opsets 7 to 13) whether it
    asks for the running statistics as outputs."""
    if opset >= 14:
        return bool(a.get("training_mode", 0))
    if opset < 7:
        return not a.get("is_test", 0)
    return a.n_outputs > 1


def _batch_norm(ex, args, a, opset):
    x, scale, bias, mean, var = args[:5]
    eps = float(a.get("epsilon", 1e-5))
    if a.get("spatial", 1) == 0:
        raise NotImplementedError("BatchNormalization with spatial=0 (per-activation statistics): ours is per "
                                  "channel")
    if not bn_training(a, opset):
        return ex("batch_norm", x, mean, var, scale, bias, training=False, eps=eps)
    # ONNX: running = momentum * running + (1 - momentum) * batch, with the biased batch variance;
    # od (PyTorch): running = (1 - m) * running + m * batch, with the unbiased variance. So m =
    # 1 - ONNX momentum, and the variance is corrected back: with n values per channel,
    # onnx_var = om * rv + (od_var - om * rv) * (n - 1) / n.
    om = float(a.get("momentum", 0.9))
    y, new_mean, new_var = ex("batch_norm", x, mean, var, scale, bias, training=True, momentum=1.0 - om, eps=eps)
    shape = _shape(x)
    n = math.prod(shape) // shape[1]
    if n > 1:
        kept = ex("mul", var, ex.scalar(om, var))
        new_var = ex("add", kept, ex("mul", ex("sub", new_var, kept), ex.scalar((n - 1) / n, var)))
    return (y, new_mean, new_var)[:max(a.n_outputs, 1)]


def _lrn(ex, args, a, opset):
    return ex("local_response_norm", args[0], size=int(a["size"]), alpha=float(a.get("alpha", 1e-4)),
              beta=float(a.get("beta", 0.75)), k=float(a.get("bias", 1.0)))


def _layer_norm(ex, args, a, opset):
    x, scale = args[0], args[1]
    b = args[2] if _given(args, 2) else None
    shape = _shape(x)
    axis = a.get("axis", -1) % len(shape)
    eps = float(a.get("epsilon", 1e-5))
    y = ex("layer_norm", x, normalized_shape=shape[axis:], weight=scale, bias=b, eps=eps)
    if a.n_outputs <= 1:
        return y
    # the optional Mean and InvStdDev outputs (kept dimensions), written with ops
    axes = tuple(range(axis, len(shape)))
    mean = ex("mean", x, axis=axes, keepdims=True)
    d = ex("sub", x, mean)
    var = ex("mean", ex("mul", d, d), axis=axes, keepdims=True)
    inv = ex("div", ex.scalar(1.0, var), ex("sqrt", ex("add", var, ex.scalar(eps, var))))
    return y, mean, inv


def _dropout(ex, args, a, opset):
    x = args[0]
    if opset >= 12:
        ratio = float(_host_array(ex, args[1], "Dropout's ratio")) if _given(args, 1) else 0.5
        training = bool(_host_array(ex, args[2], "Dropout's training_mode")) if _given(args, 2) else ex.training
    else:
        ratio = float(a.get("ratio", 0.5))
        training = (not a.get("is_test", 0)) if opset < 7 else ex.training
    if training and ratio > 0:
        y = ex("dropout", x, p=ratio, seed=a.get("seed"))  # the op is the training one; None: od.random draws
        if a.n_outputs > 1:
            raise NotImplementedError("Dropout's mask output in training: od.dropout returns the values only")
        return y
    if a.n_outputs > 1:  # inference: identity, and a mask of ones
        return x, np.ones(_shape(x), dtype=bool)
    return x


# --------------------------------------------------------------------------------------------
# Linear algebra, activations, elementwise
# --------------------------------------------------------------------------------------------


def _gemm(ex, args, a, opset):
    A, B = args[0], args[1]
    C = args[2] if _given(args, 2) else None
    if a.get("transA", 0):
        A = ex("transpose", A, axes=(1, 0))
    if a.get("transB", 0):
        B = ex("transpose", B, axes=(1, 0))
    y = ex("matmul", A, B)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        y = ex("mul", y, ex.scalar(alpha, y))
    if C is not None and beta != 0.0:  # C broadcasts to (M, N) (opset 6's broadcast=1 is NumPy's suffix rule here)
        if beta != 1.0:
            C = ex("mul", C, ex.scalar(beta, C))
        y = ex("add", y, C)
    return y


def _softmax_family(op):
    def handler(ex, args, a, opset):
        x = args[0]
        shape = _shape(x)
        if opset >= 13:  # one axis, default -1: exactly ours
            return ex(op, x, axis=a.get("axis", -1))
        # Opset < 13: coerce x to 2-D at `axis` (default 1), normalise the rows, restore the shape.
        axis = a.get("axis", 1) % len(shape)
        if axis == len(shape) - 1:
            return ex(op, x, axis=-1)
        flat = ex("reshape", x, shape=(math.prod(shape[:axis]), math.prod(shape[axis:])))
        return ex("reshape", ex(op, flat, axis=1), shape=shape)
    return handler


def _unary(op):
    return lambda ex, args, a, opset: ex(op, args[0])


def _trunc_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":  # ONNX integer Div truncates (C semantics)
        q = np.abs(x) // np.abs(y)
        return (np.sign(x) * np.sign(y) * q).astype(np.result_type(x, y))
    return x / y


#: NumPy forms of the ops that fold on the host (shape arithmetic: ints, bools, constants).
_HOST_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _trunc_div, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
}


def _binary(op):
    host = _HOST_BINARY.get(op)

    def handler(ex, args, a, opset):
        x, y = args
        if host is not None and ex.host(x) and ex.host(y):
            x, y = np.asarray(x), np.asarray(y)
            r = np.asarray(host(x, y))
            return r.astype(x.dtype) if r.dtype.kind != "b" and op != "pow" else r
        if opset < 7 and a.get("broadcast", 0) and "axis" in a:
            # Legacy broadcasting: y's dimensions line up with x's from `axis` on.
            rank, y_shape = len(_shape(x)), _shape(y)
            axis = a["axis"] % rank
            trailing = rank - axis - len(y_shape)
            if trailing > 0:
                y = ex("reshape", y, shape=y_shape + (1,) * trailing)
        return ex(op, x, y)
    return handler


_POW = _binary("pow")


def _pow(ex, args, a, opset):
    x, y = args
    if not ex.host(x) and y.dtype != x.dtype:  # ONNX lets the exponent have another type (opset >= 12)
        y = np.asarray(y).astype(x.dtype) if ex.host(y) else ex.cast(y, x.dtype)
    return _POW(ex, [x, y], a, opset)


def _variadic(op):
    def handler(ex, args, a, opset):  # Sum, Max, Min: a chain of the binary op
        vals = [v for v in args if v is not None]
        if all(ex.host(v) for v in vals):
            fn = _HOST_BINARY[op]
            r = np.asarray(vals[0])
            for v in vals[1:]:
                r = fn(r, np.asarray(v))
            return r
        y = vals[0]
        for v in vals[1:]:
            y = ex(op, y, v)
        return y
    return handler


_SUM = _variadic("add")


def _mean(ex, args, a, opset):
    vals = [v for v in args if v is not None]
    y = _SUM(ex, vals, a, opset)
    return y if len(vals) == 1 else ex("div", y, ex.scalar(float(len(vals)), y))


def _leaky_relu(ex, args, a, opset):
    return ex("leaky_relu", args[0], negative_slope=float(a.get("alpha", 0.01)))


def _hardsigmoid(ex, args, a, opset):
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    x = args[0]
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:  # PyTorch's, as torch.onnx exports it (float32 1/6)
        return ex("hardsigmoid", x)
    return ex("clip", ex("add", ex("mul", x, ex.scalar(alpha, x)), ex.scalar(beta, x)), min=0.0, max=1.0)


def _swish(ex, args, a, opset):
    """Swish (opset 24): x * sigmoid(alpha * x); alpha 1 (the default) is od.silu."""
    alpha, x = float(a.get("alpha", 1.0)), args[0]
    if alpha == 1.0:
        return ex("silu", x)
    return ex("mul", x, ex("sigmoid", ex("mul", x, ex.scalar(alpha, x))))


def _gelu(ex, args, a, opset):
    return ex("gelu", args[0], approximate=a.get("approximate", "none"))


def _bound(ex, v: Any, what: str) -> Optional[float]:
    if v is None:
        return None
    arr = _host_array(ex, v, what)
    if arr.size != 1:
        raise NotImplementedError(f"{what} of shape {arr.shape}: a scalar is expected")
    return float(arr.reshape(()))


def _clip(ex, args, a, opset):
    x = args[0]
    if opset < 11:
        lo, hi = a.get("min"), a.get("max")
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    else:
        lo = _bound(ex, args[1] if _given(args, 1) else None, "Clip's min")
        hi = _bound(ex, args[2] if _given(args, 2) else None, "Clip's max")
    if ex.host(x):
        return np.clip(np.asarray(x), lo, hi).astype(np.asarray(x).dtype)
    if lo is None and hi is None:
        return x
    return ex("clip", x, min=lo, max=hi)


def _where(ex, args, a, opset):
    if _all_host(ex, args):
        return np.where(*[np.asarray(v) for v in args])
    return ex("where", *args)


def _not(ex, args, a, opset):
    if ex.host(args[0]):
        return np.logical_not(np.asarray(args[0]))
    return ex("equal", args[0], False)


def _arg_reduce(op):
    def handler(ex, args, a, opset):
        if a.get("select_last_index", 0):
            raise NotImplementedError(f"{'ArgMax' if op == 'argmax' else 'ArgMin'} with select_last_index=1: "
                                      f"od.{op} returns the first index")
        axis = int(a.get("axis", 0))
        keep = bool(a.get("keepdims", 1))
        if ex.host(args[0]):
            fn = np.argmax if op == "argmax" else np.argmin
            return np.asarray(fn(np.asarray(args[0]), axis=axis, keepdims=keep), dtype=np.int64)
        return ex(op, args[0], axis=axis, keepdims=keep)
    return handler


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------

# The opset from which each reduction takes its axes as an input instead of an attribute.
MODE_DEPENDENT = frozenset({"Dropout"})
"""Op types whose result depends on the model's mode (``ex.training``): never folded at import, even
with constant inputs."""

AXES_AS_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18}
_HOST_REDUCE: dict[str, Callable[..., Any]] = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
                                               "prod": np.prod}


def _reduce(onnx_op, op):
    def handler(ex, args, a, opset):
        if opset >= AXES_AS_INPUT_SINCE[onnx_op]:
            axes = _ints(_host_array(ex, args[1], f"{onnx_op}'s axes")) if _given(args, 1) else []
        else:
            axes = list(a.get("axes", []))
        if axes:
            axis: Optional[tuple[int, ...]] = tuple(axes)
        else:  # no axes: every axis, or (noop_with_empty_axes) none, which is our axis=()
            axis = () if a.get("noop_with_empty_axes", 0) else None
        keep = bool(a.get("keepdims", 1))
        if ex.host(args[0]):
            x = np.asarray(args[0])
            return np.asarray(_HOST_REDUCE[op](x, axis=axis, keepdims=keep)).astype(x.dtype)
        if op == "prod":
            raise NotImplementedError("ReduceProd of a device tensor: opdispatch has no product reduction")
        return ex(op, args[0], axis=axis, keepdims=keep)
    return handler


# --------------------------------------------------------------------------------------------
# Layout and shapes (folded on the host when their inputs are constants or shapes)
# --------------------------------------------------------------------------------------------


def _reshape_target(x: Any, target: list[int], allowzero: bool) -> tuple[int, ...]:
    if not allowzero:  # 0 copies the input's dimension
        in_shape = _shape(x)
        target = [in_shape[i] if d == 0 else d for i, d in enumerate(target)]
    return tuple(target)


def _reshape(ex, args, a, opset):
    x = args[0]
    target = list(a["shape"]) if opset < 5 else _ints(_host_array(ex, args[1], "Reshape's shape"))
    shape = _reshape_target(x, target, bool(a.get("allowzero", 0)))
    if ex.host(x):
        return np.asarray(x).reshape(shape)
    return ex("reshape", x, shape=shape)


def _transpose(ex, args, a, opset):
    perm = a.get("perm")
    if ex.host(args[0]):
        return np.transpose(np.asarray(args[0]), perm)
    return ex("transpose", args[0], axes=None if perm is None else tuple(perm))


def _flatten(ex, args, a, opset):
    # ONNX Flatten(axis) is always 2-D: (prod(shape[:axis]), prod(shape[axis:])). Ours keeps the
    # leading axes, so merge them with a reshape afterwards.
    x = args[0]
    shape = _shape(x)
    axis = a.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    lead, rest = math.prod(shape[:axis]), math.prod(shape[axis:])
    if ex.host(x):
        return np.asarray(x).reshape(lead, rest)
    if axis == len(shape):
        return ex("reshape", x, shape=(lead, 1))
    if axis == 0:
        return ex("reshape", x, shape=(1, rest))
    y = ex("flatten", x, start_axis=axis)
    return y if _shape(y) == (lead, rest) else ex("reshape", y, shape=(lead, rest))


def _tensor_value(t: Any) -> np.ndarray:
    from onnx import numpy_helper  # a TensorProto attribute: onnx is there

    return numpy_helper.to_array(t)


def _constant(ex, args, a, opset):
    if "value" in a:
        return ex.feed(_tensor_value(a["value"]))
    if "value_float" in a:
        return ex.feed(np.asarray(a["value_float"], dtype=np.float32))
    if "value_floats" in a:
        return ex.feed(np.asarray(a["value_floats"], dtype=np.float32))
    if "value_int" in a:
        return np.asarray(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.asarray(a["value_ints"], dtype=np.int64)
    raise NotImplementedError(f"Constant with attributes {sorted(a)} (sparse or string values)")


def _constant_of_shape(ex, args, a, opset):
    shape = tuple(_ints(_host_array(ex, args[0], "ConstantOfShape's shape")))
    value = _tensor_value(a["value"]).reshape(-1) if "value" in a else np.zeros(1, np.float32)
    return ex.feed(np.full(shape, value[0], dtype=value.dtype))


def _shape_op(ex, args, a, opset):
    dims = _shape(args[0])
    start, end = a.get("start", 0), a.get("end")
    return np.asarray(dims[start:end] if opset >= 15 else dims, dtype=np.int64)


def _size(ex, args, a, opset):
    return np.asarray(math.prod(_shape(args[0])), dtype=np.int64)


def _gather(ex, args, a, opset):
    data, indices = args
    axis = int(a.get("axis", 0))
    idx = _host_array(ex, indices, "Gather's indices").astype(np.int64)
    if ex.host(data):
        return np.take(np.asarray(data), idx, axis=axis)
    rank = len(_shape(data))
    axis %= rank
    if idx.ndim == 0:  # one index: a slice of size 1 along axis, the axis dropped
        i = int(idx) % _shape(data)[axis]
        y = ex("slice", data, starts=[i], ends=[i + 1], axes=[axis])
        shape = _shape(data)
        return ex("reshape", y, shape=shape[:axis] + shape[axis + 1:])
    key = (slice(None),) * axis + (idx,)
    return data[key]  # tensor indexing (integer arrays)


def _unsqueeze(ex, args, a, opset):
    x = args[0]
    axes = list(a["axes"]) if opset < 13 else _ints(_host_array(ex, args[1], "Unsqueeze's axes"))
    shape = list(_shape(x))
    out_rank = len(shape) + len(axes)
    for ax in sorted(ax % out_rank for ax in axes):
        shape.insert(ax, 1)
    if ex.host(x):
        return np.asarray(x).reshape(shape)
    return ex("unsqueeze", x, axis=tuple(axes))


def _squeeze(ex, args, a, opset):
    x = args[0]
    shape = _shape(x)
    if opset < 13:
        axes = a.get("axes")
    else:
        axes = _ints(_host_array(ex, args[1], "Squeeze's axes")) if _given(args, 1) else None
    if axes is None:
        new = tuple(d for d in shape if d != 1)
    else:
        drop = {ax % len(shape) for ax in axes}
        new = tuple(d for i, d in enumerate(shape) if i not in drop)
    if ex.host(x):
        return np.asarray(x).reshape(new)
    return ex("squeeze", x, axis=None if axes is None else tuple(axes))


def _concat(ex, args, a, opset):
    vals = [v for v in args if v is not None]
    axis = int(a["axis"]) if "axis" in a else 1  # opset < 4 defaulted to 1; later opsets require it
    if all(ex.host(v) for v in vals):
        return np.concatenate([np.asarray(v) for v in vals], axis=axis)
    return ex("concat", vals, axis=axis)


def _split(ex, args, a, opset):
    x = args[0]
    shape = _shape(x)
    axis = int(a.get("axis", 0)) % len(shape)
    n = shape[axis]
    if opset >= 13 and _given(args, 1):
        sizes = _ints(_host_array(ex, args[1], "Split's split"))
    elif opset < 13 and "split" in a:
        sizes = list(a["split"])
    else:
        parts = int(a["num_outputs"]) if "num_outputs" in a else a.n_outputs
        chunk = -(-n // parts)  # opset 18: the last part may be smaller
        sizes = [chunk] * (parts - 1) + [n - chunk * (parts - 1)]
    if ex.host(x):
        return tuple(np.split(np.asarray(x), np.cumsum(sizes)[:-1], axis=axis))
    return tuple(ex("split", x, sections=sizes, axis=axis))


def _pad(ex, args, a, opset):
    x = args[0]
    rank = len(_shape(x))
    mode = a.get("mode", "constant")
    if opset < 11:
        pads, value, axes = list(a.get("pads", a.get("paddings", []))), float(a.get("value", 0.0)), None
    else:
        pads = _ints(_host_array(ex, args[1], "Pad's pads"))
        value = 0.0 if not _given(args, 2) else float(_host_array(ex, args[2], "Pad's constant_value").reshape(()))
        axes = _ints(_host_array(ex, args[3], "Pad's axes")) if _given(args, 3) else None
    axes = list(range(rank)) if axes is None else [ax % rank for ax in axes]
    k = len(axes)
    per_axis = {ax: (pads[i], pads[i + k]) for i, ax in enumerate(axes)}
    full = [per_axis.get(ax, (0, 0)) for ax in range(rank)]
    if mode not in ("constant", "reflect", "edge"):
        raise NotImplementedError(f"Pad mode {mode!r}: od.pad has constant, reflect and edge")
    if any(p < 0 for pair in full for p in pair):  # negative pads crop: a slice first
        starts = [-b if b < 0 else 0 for b, _ in full]
        ends = [d + e if e < 0 else d for d, (_, e) in zip(_shape(x), full)]
        x = ex("slice", x, starts=starts, ends=ends, axes=list(range(rank)))
        full = [(max(b, 0), max(e, 0)) for b, e in full]
    if ex.host(x):
        kw: dict[str, Any] = {"constant_values": value} if mode == "constant" else {}
        return np.pad(np.asarray(x), full, mode=mode, **kw)
    lead = 0
    while lead < rank and full[lead] == (0, 0):
        lead += 1
    if lead == rank:
        return x
    return ex("pad", x, pads=tuple(full[lead:]), mode=mode, value=value)


_INT_MAX = 2**62


def _slice(ex, args, a, opset):
    x = args[0]
    rank = len(_shape(x))
    if opset < 10:
        starts, ends = list(a["starts"]), list(a["ends"])
        axes = list(a.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = _ints(_host_array(ex, args[1], "Slice's starts"))
        ends = _ints(_host_array(ex, args[2], "Slice's ends"))
        axes = _ints(_host_array(ex, args[3], "Slice's axes")) if _given(args, 3) else list(range(len(starts)))
        steps = _ints(_host_array(ex, args[4], "Slice's steps")) if _given(args, 4) else [1] * len(starts)
    axes = [ax % rank for ax in axes]
    # ONNX writes "to the end" as a huge end (INT64_MAX, or INT64_MIN for negative steps)
    ends_: list[Optional[int]] = [None if abs(e) >= _INT_MAX else e for e in ends]
    starts = [max(min(s, _INT_MAX), -_INT_MAX) for s in starts]
    if ex.host(x):
        key = [slice(None)] * rank
        for s, e, ax, st in zip(starts, ends_, axes, steps):
            key[ax] = slice(s, e, st)
        return np.asarray(x)[tuple(key)]
    return ex("slice", x, starts=starts, ends=ends_, axes=axes, steps=steps)


def _expand(ex, args, a, opset):
    x = args[0]
    target = _ints(_host_array(ex, args[1], "Expand's shape"))
    shape = np.broadcast_shapes(_shape(x), tuple(target))  # ONNX Expand broadcasts both ways
    if ex.host(x):
        return np.broadcast_to(np.asarray(x), shape).copy()
    if tuple(shape) == _shape(x):
        return x
    return ex("add", x, ex.feed(np.zeros(shape, dtype=x.dtype)))


def _range(ex, args, a, opset):
    start, limit, delta = (_host_array(ex, v, "Range's inputs") for v in args)
    return np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)


def onnx_dtype(code: int) -> np.dtype:
    """The NumPy dtype of an ONNX TensorProto data type code."""
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(code))


def _cast(ex, args, a, opset):
    to = onnx_dtype(int(a["to"]))
    x = args[0]
    if ex.host(x):
        return np.asarray(x).astype(to)
    return ex.cast(x, to)


def _identity(ex, args, a, opset):
    return args[0]


#: ONNX op type -> translation into opdispatch op calls (the single table: the importer and the
#: conformance suite's ONNX cases both use it).
TRANSLATORS: dict[str, Handler] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "GlobalAveragePool": _global_pool("mean"), "GlobalMaxPool": _global_pool("max"),
    "BatchNormalization": _batch_norm,
    "LRN": _lrn,
    "LayerNormalization": _layer_norm,
    "Dropout": _dropout,
    "MatMul": lambda ex, args, a, opset: ex("matmul", args[0], args[1]),
    "Gemm": _gemm,
    "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"), "Tanh": _unary("tanh"), "Exp": _unary("exp"),
    "Log": _unary("log"), "Sqrt": _unary("sqrt"), "Neg": _unary("neg"), "Abs": _unary("abs"), "Erf": _unary("erf"),
    "HardSwish": _unary("hardswish"), "Swish": _swish, "HardSigmoid": _hardsigmoid, "LeakyRelu": _leaky_relu,
    "Gelu": _gelu, "Clip": _clip,
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _binary("div"),
    "Pow": _pow,
    "Equal": _binary("equal"), "Less": _binary("less"), "LessOrEqual": _binary("less_equal"),
    "Greater": _binary("greater"), "GreaterOrEqual": _binary("greater_equal"), "Not": _not,
    "Where": _where,
    "Sum": _SUM, "Max": _variadic("maximum"), "Min": _variadic("minimum"), "Mean": _mean,
    "ArgMax": _arg_reduce("argmax"), "ArgMin": _arg_reduce("argmin"),
    "Softmax": _softmax_family("softmax"), "LogSoftmax": _softmax_family("log_softmax"),
    "ReduceSum": _reduce("ReduceSum", "sum"), "ReduceMean": _reduce("ReduceMean", "mean"),
    "ReduceMax": _reduce("ReduceMax", "max"), "ReduceMin": _reduce("ReduceMin", "min"),
    "ReduceProd": _reduce("ReduceProd", "prod"),
    "Reshape": _reshape, "Transpose": _transpose, "Flatten": _flatten,
    "Concat": _concat, "Split": _split, "Pad": _pad, "Slice": _slice,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Expand": _expand,
    # shapes and constants (resolved on the host)
    "Constant": _constant, "ConstantOfShape": _constant_of_shape, "Shape": _shape_op, "Size": _size,
    "Gather": _gather, "Range": _range, "Cast": _cast, "Identity": _identity,
}


def supported_op_types() -> list[str]:
    """The ONNX op types (default domain) the importer translates, sorted."""
    return sorted(TRANSLATORS)


#: The opdispatch ops each translation may call (beyond host NumPy): a model or a test case that
#: uses an ONNX op whose od ops this opdispatch lacks cannot run (the conformance suite skips it).
USES: dict[str, tuple[str, ...]] = {
    "Conv": ("conv2d",), "ConvTranspose": ("conv_transpose2d",), "MaxPool": ("max_pool2d",),
    "AveragePool": ("avg_pool2d",), "GlobalAveragePool": ("mean",), "GlobalMaxPool": ("max",),
    "BatchNormalization": ("batch_norm", "mul", "add", "sub"), "LRN": ("local_response_norm",),

    "LayerNormalization": ("layer_norm", "mean", "sub", "mul", "add", "sqrt", "div"), "Dropout": ("dropout",),
    "MatMul": ("matmul",),
    "Gemm": ("matmul", "transpose", "mul", "add"),
    "Relu": ("relu",), "Sigmoid": ("sigmoid",), "Tanh": ("tanh",), "Exp": ("exp",), "Log": ("log",),
    "Sqrt": ("sqrt",), "Neg": ("neg",), "Abs": ("abs",), "Erf": ("erf",), "HardSwish": ("hardswish",),
    "Swish": ("silu", "mul", "sigmoid"), "HardSigmoid": ("hardsigmoid", "clip", "mul", "add"),
    "LeakyRelu": ("leaky_relu",), "Gelu": ("gelu",),
    "Clip": ("clip",), "Add": ("add", "reshape"), "Sub": ("sub", "reshape"), "Mul": ("mul", "reshape"),
    "Div": ("div", "reshape"), "Pow": ("pow",), "Equal": ("equal",), "Less": ("less",),
    "LessOrEqual": ("less_equal",), "Greater": ("greater",), "GreaterOrEqual": ("greater_equal",),
    "Not": ("equal",), "Where": ("where",), "Sum": ("add",), "Max": ("maximum",), "Min": ("minimum",),
    "Mean": ("add", "div"), "ArgMax": ("argmax",), "ArgMin": ("argmin",),
    "Softmax": ("softmax", "reshape"), "LogSoftmax": ("log_softmax", "reshape"),
    "ReduceSum": ("sum",), "ReduceMean": ("mean",), "ReduceMax": ("max",), "ReduceMin": ("min",),
    "ReduceProd": (), "Reshape": ("reshape",), "Transpose": ("transpose",), "Flatten": ("flatten", "reshape"),
    "Concat": ("concat",), "Split": ("split",), "Pad": ("pad", "slice"), "Slice": ("slice",),
    "Unsqueeze": ("unsqueeze",), "Squeeze": ("squeeze",), "Expand": ("add",),
    "Constant": (), "ConstantOfShape": (), "Shape": (), "Size": (), "Gather": ("slice", "reshape"),
    "Range": (), "Cast": (), "Identity": (),
}


#: The input positions each translation reads on the host (shapes, axes, pads, bounds, indices):
#: an initializer read only at such positions is a constant of the model, not a parameter.
HOST_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3), "Clip": (1, 2), "Unsqueeze": (1,), "Squeeze": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
    "Split": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Dropout": (1, 2), "Gather": (1,), "Range": (0, 1, 2),
}
