"""The public op functions (``od.conv2d`` ...), one per schema in `opdispatch.ops`.

Element-wise ops get a fast path: when every input is a tensor on one device with one dtype
and shape (or a float tensor and a Python number), the device has an unconditional kernel for
that dtype and no recorder (gradient tape, tracer) is active, the kernel runs directly (shape
inference is the identity there). Everything else goes through
`opdispatch.dispatch.run`, which validates before running.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import ops as _ops
from .dispatch import kernel_error, run
from .recording import ACTIVE as _RECORDING
from .tensor import Tensor, make

Pair = Union[int, tuple[int, int]]
Padding = Union[int, str, tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]
Axis = Union[None, int, Sequence[int]]
_NO_ATTRS: dict = {}


def _named(fn: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = "opdispatch"
    return fn


def _unary(name: str) -> Callable[[Any], Tensor]:
    schema = _ops.OPS[name]

    def op(x: Any) -> Tensor:
        if type(x) is Tensor and not _RECORDING[0]:
            fn = x._rt.fast.get((name, x._dtype))
            if fn is not None:
                try:
                    return make(fn(x._data), x._shape, x._dtype, x._rt)
                except Exception as exc:
                    raise kernel_error(name, x._rt, exc) from exc
        return run(schema, (x,), _NO_ATTRS)

    return _named(op, name, f"Element-wise {schema.doc}.")


_SCALAR_LIMIT = 2**53  # Python ints below this convert to floats exactly, as the general path converts them


def _weak_scalar(value: Any) -> bool:
    kind = type(value)
    return kind is float or (kind is int and -_SCALAR_LIMIT < value < _SCALAR_LIMIT)


def _binary(name: str) -> Callable[[Any, Any], Tensor]:
    schema = _ops.OPS[name]

    def op(a: Any, b: Any) -> Tensor:
        if not _RECORDING[0]:
            if type(a) is Tensor and type(b) is Tensor:
                rt = a._rt
                if rt is b._rt and a._dtype is b._dtype and a._shape == b._shape:
                    fn = rt.fast.get((name, a._dtype))
                    if fn is not None:
                        try:
                            return make(fn(a._data, b._data), a._shape, a._dtype, rt)
                        except Exception as exc:
                            raise kernel_error(name, rt, exc) from exc
            elif type(a) is Tensor and _weak_scalar(b) or type(b) is Tensor and _weak_scalar(a):
                # tensor with a Python number: the number takes the tensor's float dtype (a 0-d array
                # broadcast by the kernel), exactly what the general path does after validation
                t = a if type(a) is Tensor else b
                fn = t._rt.fast.get((name, t._dtype)) if t._dtype.kind == "f" else None
                if fn is not None:
                    rt = t._rt
                    s = rt.from_numpy(np.asarray(b if t is a else a, dtype=t._dtype), rt.device)
                    try:
                        out = fn(t._data, s) if t is a else fn(s, t._data)
                    except Exception as exc:
                        raise kernel_error(name, rt, exc) from exc
                    return make(out, t._shape, t._dtype, rt)
        return run(schema, (a, b), _NO_ATTRS)

    return _named(op, name, f"Element-wise {schema.doc}.")


relu = _unary("relu")
sigmoid = _unary("sigmoid")
tanh = _unary("tanh")
exp = _unary("exp")
log = _unary("log")
sqrt = _unary("sqrt")
neg = _unary("neg")
add = _binary("add")
sub = _binary("sub")
mul = _binary("mul")
div = _binary("div")


def conv2d(x: Any, w: Any, bias: Any = None, *, stride: Pair = 1, padding: Padding = 0, dilation: Pair = 1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), w (C_out, C/groups, KH, KW), optional bias (C_out,).

    ``padding`` is an int, an (ph, pw) pair, ((top, bottom), (left, right)), "VALID" or "SAME"
    (TensorFlow's rule: output ceil(in / stride), an odd extra row/column at the bottom/right).
    """
    return run(_ops.OPS["conv2d"], (x, w, bias),
               {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})


def max_pool2d(x: Any, kernel_size: Pair, *, stride: Optional[Pair] = None, padding: Padding = 0,
               dilation: Pair = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over windows of x (N, C, H, W); padding counts as -inf; stride None means kernel_size."""
    return run(_ops.OPS["max_pool2d"], (x,), {"kernel_size": kernel_size, "stride": stride, "padding": padding,
                                              "dilation": dilation, "ceil_mode": ceil_mode})


def avg_pool2d(x: Any, kernel_size: Pair, *, stride: Optional[Pair] = None, padding: Padding = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of x (N, C, H, W). With ``count_include_pad`` the divisor is the window
    clipped to the padded input, otherwise the number of real input elements in the window."""
    return run(_ops.OPS["avg_pool2d"], (x,), {"kernel_size": kernel_size, "stride": stride, "padding": padding,
                                              "ceil_mode": ceil_mode, "count_include_pad": count_include_pad})


def batch_norm(x: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None, *,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Any:
    """Batch normalisation over axis 1 (PyTorch semantics).

    Inference returns y. ``training=True`` normalises with the batch statistics (biased variance)
    and returns ``(y, new_running_mean, new_running_var)``, where
    ``new = (1 - momentum) * running + momentum * batch`` and the variance is unbiased; the
    inputs are never mutated.
    """
    return run(_ops.OPS["batch_norm"], (x, running_mean, running_var, weight, bias),
               {"training": training, "momentum": momentum, "eps": eps})


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with numpy.matmul semantics (1-D promotion, broadcast batch dimensions)."""
    return run(_ops.OPS["matmul"], (a, b), _NO_ATTRS)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Sum over ``axis`` (None: every axis)."""
    return run(_ops.OPS["sum"], (x,), {"axis": axis, "keepdims": keepdims})


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None: every axis)."""
    return run(_ops.OPS["mean"], (x,), {"axis": axis, "keepdims": keepdims})


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - API name
    """Maximum over ``axis`` (None: every axis)."""
    return run(_ops.OPS["max"], (x,), {"axis": axis, "keepdims": keepdims})


def reshape(x: Any, shape: Union[int, Sequence[int]]) -> Tensor:
    """The same elements in row-major order under ``shape``; one entry may be -1 (inferred)."""
    return run(_ops.OPS["reshape"], (x,), {"shape": shape})


def transpose(x: Any, axes: Optional[Sequence[int]] = None) -> Tensor:
    """Permute the axes (None reverses them)."""
    return run(_ops.OPS["transpose"], (x,), {"axes": axes})


def flatten(x: Any, start_axis: int = 1) -> Tensor:
    """Merge every axis from ``start_axis`` on into one."""
    return run(_ops.OPS["flatten"], (x,), {"start_axis": start_axis})


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) normalised along ``axis``."""
    return run(_ops.OPS["softmax"], (x,), {"axis": axis})


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return run(_ops.OPS["log_softmax"], (x,), {"axis": axis})


def softmax_cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean over the batch of -log_softmax(logits)[i, labels[i]]: logits (N, C), int labels (N,)."""
    return run(_ops.OPS["softmax_cross_entropy"], (logits, labels), _NO_ATTRS)
