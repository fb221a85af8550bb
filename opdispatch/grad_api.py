"""Functions for the backward ops of `opdispatch.ops.grad` (the VJP rules of autodiff call them) and
the fused ops of `opdispatch.ops.fused`.

They run like the public ops of `opdispatch.api`: validation, then the device's kernel. `op_function`
finds the function of any op by name, forward or backward.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from . import api
from . import ops as _ops
from .api import Axis, Pair, Padding
from .dispatch import run
from .tensor import Tensor

_NO_ATTRS: dict = {}


def conv2d_backward_input(dy: Any, w: Any, input_shape: Sequence[int], *, stride: Pair = 1, padding: Padding = 0,
                          dilation: Pair = 1, groups: int = 1) -> Tensor:
    """Gradient of ``conv2d(x, w, ...)`` with respect to x (of ``input_shape``) given the output gradient dy."""
    return run(_ops.OPS["conv2d_backward_input"], (dy, w),
               {"input_shape": input_shape, "stride": stride, "padding": padding, "dilation": dilation,
                "groups": groups})


def conv2d_backward_weight(x: Any, dy: Any, weight_shape: Sequence[int], *, stride: Pair = 1, padding: Padding = 0,
                           dilation: Pair = 1, groups: int = 1) -> Tensor:
    """Gradient of ``conv2d(x, w, ...)`` with respect to w (of ``weight_shape``) given dy."""
    return run(_ops.OPS["conv2d_backward_weight"], (x, dy),
               {"weight_shape": weight_shape, "stride": stride, "padding": padding, "dilation": dilation,
                "groups": groups})


def max_pool2d_backward(x: Any, dy: Any, kernel_size: Pair, *, stride: Optional[Pair] = None, padding: Padding = 0,
                        dilation: Pair = 1, ceil_mode: bool = False) -> Tensor:
    """Gradient of ``max_pool2d(x, ...)`` with respect to x: each window's dy goes to its first maximum."""
    return run(_ops.OPS["max_pool2d_backward"], (x, dy),
               {"kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation,
                "ceil_mode": ceil_mode})


def avg_pool2d_backward(dy: Any, input_shape: Sequence[int], kernel_size: Pair, *, stride: Optional[Pair] = None,
                        padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Gradient of ``avg_pool2d(x, ...)`` with respect to x (of ``input_shape``)."""
    return run(_ops.OPS["avg_pool2d_backward"], (dy,),
               {"input_shape": input_shape, "kernel_size": kernel_size, "stride": stride, "padding": padding,
                "ceil_mode": ceil_mode, "count_include_pad": count_include_pad})


def batch_norm_backward(x: Any, dy: Any, running_mean: Any, running_var: Any, weight: Any = None, *,
                        training: bool = False, eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients ``(dx, dweight, dbias)`` of ``batch_norm``'s y given dy."""
    return run(_ops.OPS["batch_norm_backward"], (x, dy, running_mean, running_var, weight),
               {"training": training, "eps": eps})


def relu_backward(dy: Any, x: Any) -> Tensor:
    """dy where x > 0, else 0."""
    return run(_ops.OPS["relu_backward"], (dy, x), _NO_ATTRS)


def max_backward(x: Any, dy: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Gradient of ``max(x, axis, keepdims)``: dy split equally among the tied maxima."""
    return run(_ops.OPS["max_backward"], (x, dy), {"axis": axis, "keepdims": keepdims})


def softmax_cross_entropy_backward(logits: Any, labels: Any, dloss: Any) -> Tensor:
    """Gradient of ``softmax_cross_entropy`` in logits: (softmax(logits) - onehot(labels)) * dloss / N."""
    return run(_ops.OPS["softmax_cross_entropy_backward"], (logits, labels, dloss), _NO_ATTRS)


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    """x broadcast to ``shape`` under NumPy rules."""
    return run(_ops.OPS["broadcast_to"], (x,), {"shape": shape})


def conv2d_bias_relu(x: Any, w: Any, bias: Any = None, *, stride: Pair = 1, padding: Padding = 0, dilation: Pair = 1,
                     groups: int = 1) -> Tensor:
    """relu(conv2d(x, w, bias, ...)) as one op (the graph frontend's fusion makes these)."""
    return run(_ops.OPS["conv2d_bias_relu"], (x, w, bias),
               {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})


_FUNCTIONS = set(_ops.grad.GRAD_OP_NAMES) | set(_ops.fused.FUSED_PARTS)


def op_function(name: str) -> Callable[..., Any]:
    """The function that runs op ``name``: from `opdispatch.api`, else from this module."""
    fn = getattr(api, name, None)
    if fn is None:
        fn = globals()[name] if name in _FUNCTIONS else None
    if fn is None:
        _ops.get_schema(name)  # raises for an unknown op
        raise AttributeError(f"no function for op {name!r}")
    return fn
