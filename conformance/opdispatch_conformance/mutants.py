"""Deliberately broken kernels: each is the NumPy backend's kernel with one classic mistake.

`make_mutant_plugin(name)` builds a backend ``mutant_<name>`` that has every NumPy kernel but the
broken one, so the conformance suite can be shown to catch each mistake (its own tests do, for
every mutant; ``od.register_plugin(make_mutant_plugin(name))`` then ``opdispatch conformance
--device mutant_<name>:0`` shows it by hand).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import opdispatch_numpy.conv as conv_kernels
import opdispatch_numpy.plugin as numpy_plugin
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel
from opdispatch.shapes import output_hw
from opdispatch_numpy.conv import conv2d
from opdispatch_numpy.norm import batch_norm
from opdispatch_numpy.pool import max_pool2d
from opdispatch_numpy.windows import pad_hw, tap


def _pool_taps(x, kernel_size, stride, padding, dilation, out_hw, fill, reduce):
    """Reduce the strided tap slices of ``x`` padded with ``fill`` (ceil overhang included)."""
    hw = x.shape[2:]
    extra = tuple(max((out_hw[a] - 1) * stride[a] + dilation[a] * (kernel_size[a] - 1) + 1 - hw[a] - sum(padding[a]),
                      0) for a in (0, 1))
    xp = pad_hw(x, padding, fill, extra)
    res = tap(xp, 0, 0, stride, dilation, out_hw).copy()
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            if i or j:
                reduce(res, tap(xp, i, j, stride, dilation, out_hw), out=res)
    return res


def same_on_wrong_side(x, w, bias=None, *, stride, padding, dilation, groups):
    """Odd SAME padding put first (top/left) instead of last."""
    (t, b), (l, r) = padding  # noqa: E741 - top, bottom, left, right
    return conv2d(x, w, bias, stride=stride, padding=((b, t), (r, l)), dilation=dilation, groups=groups)


def groups_ignored(x, w, bias=None, *, stride, padding, dilation, groups):
    """Every filter sees the first channel group only."""
    cg = w.shape[1]
    first = np.concatenate([x[:, :cg]] * groups, axis=1)
    return conv2d(first, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def dilation_ignored(x, w, bias=None, *, stride, padding, dilation, groups):
    """Dilation treated as 1."""
    return conv2d(x, w, bias, stride=stride, padding=padding, dilation=(1, 1), groups=groups)


def weights_flipped(x, w, bias=None, *, stride, padding, dilation, groups):
    """True convolution (kernel flipped) instead of the cross-correlation frameworks call conv."""
    return conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), bias, stride=stride, padding=padding,
                  dilation=dilation, groups=groups)


def bias_dropped(x, w, bias=None, *, stride, padding, dilation, groups):
    """The bias is never added."""
    return conv2d(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)


def ceil_rule_ignored(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """ceil_mode keeps a last window that starts in the trailing padding."""
    if not ceil_mode:
        return max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=False)
    hw = x.shape[2:]
    out = tuple(-(-(hw[a] + sum(padding[a]) - dilation[a] * (kernel_size[a] - 1) - 1) // stride[a]) + 1
                for a in (0, 1))
    return _pool_taps(x, kernel_size, stride, padding, dilation, out, -np.inf, np.maximum)


def max_pool_zero_padding(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Max pooling padded with zeros instead of -inf."""
    out = output_hw(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    return _pool_taps(x, kernel_size, stride, padding, dilation, out, 0.0, np.maximum)


def divisor_always_window(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Divides by KH*KW whatever count_include_pad and the clipping say."""
    out = output_hw(x.shape[2:], kernel_size, stride, padding, (1, 1), ceil_mode)
    total = _pool_taps(x, kernel_size, stride, padding, (1, 1), out, 0.0, np.add)
    return total / x.dtype.type(kernel_size[0] * kernel_size[1])


def variance_swapped(x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    """Normalises with the unbiased variance and keeps the biased one as running statistic."""
    if not training:
        return batch_norm(x, running_mean, running_var, weight, bias, training=False, momentum=momentum, eps=eps)
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    var_b = x.var(axis=axes)
    var_u = var_b * n / (n - 1)
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes)
    y = (x - mean.reshape(bshape)) / np.sqrt(var_u.reshape(bshape) + eps)
    if weight is not None:
        y = y * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    m = x.dtype.type(momentum)
    return y.astype(x.dtype), (1 - m) * running_mean + m * mean, ((1 - m) * running_var + m * var_b).astype(x.dtype)


def momentum_reversed(x, running_mean, running_var, weight=None, bias=None, *, training, momentum, eps):
    """new_running = momentum * running + (1 - momentum) * batch (ONNX's sense, not PyTorch's)."""
    out = batch_norm(x, running_mean, running_var, weight, bias, training=training, momentum=1 - momentum, eps=eps)
    return out


def matmul_no_broadcast(a, b):
    """Batched b is reduced to its first matrix instead of being broadcast."""
    if b.ndim > 2:
        b = b[(0,) * (b.ndim - 2)]
    return np.matmul(a, b)


def softmax_unshifted(x, *, axis):
    """exp without subtracting the max: overflows for large logits."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / np.sum(e, axis=axis, keepdims=True)


def relu_backward_leaky(dy, x):
    """The gradient flows where x <= 0 as well."""
    return np.array(dy, copy=True)


def conv_backward_input_unflipped(dy, w, *, input_shape, stride, padding, dilation, groups):
    """The transposed convolution uses the weights unflipped (a correlation where a convolution is due)."""
    return conv_kernels.conv2d_backward_input(dy, np.ascontiguousarray(w[:, :, ::-1, ::-1]), input_shape=input_shape,
                                              stride=stride, padding=padding, dilation=dilation, groups=groups)


def relu_in_place(x):
    """relu computed into its input's buffer (saves an allocation, overwrites the caller's tensor)."""
    return np.maximum(x, x.dtype.type(0), out=x)


_ADD_BUFFERS: dict = {}


def add_reused_buffer(a, b):
    """add into one module-level output buffer per (shape, dtype), returned to every caller: the
    previous result changes under its owner's feet at the next call of that shape."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    dtype = np.result_type(a, b)
    out = _ADD_BUFFERS.get((shape, dtype))
    if out is None:
        out = _ADD_BUFFERS[(shape, dtype)] = np.empty(shape, dtype)
    return np.add(a, b, out=out)


BATCH_CHUNK = 4


def conv_batch_remainder(x, w, bias=None, *, stride, padding, dilation, groups):
    """conv2d over batch chunks of `BATCH_CHUNK` images whose remainder chunk starts one image early
    (an off-by-one in the tail loop): wrong only for batches of 5 or more that are not multiples of 4."""
    n = x.shape[0]
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    parts = []
    full = n - n % BATCH_CHUNK
    for n0 in range(0, full, BATCH_CHUNK):
        parts.append(conv2d(x[n0:n0 + BATCH_CHUNK], w, bias, **kw))
    if full < n:
        start = full - 1 if full else 0  # the tail chunk's first image, off by one
        parts.append(conv2d(x[start:start + n - full], w, bias, **kw))
    return np.concatenate(parts, axis=0)


def max_pool_drops_nan(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Max pooling with np.fmax: a NaN in a window is skipped instead of being the window's maximum."""
    out = output_hw(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    with np.errstate(invalid="ignore"):
        return _pool_taps(x, kernel_size, stride, padding, dilation, out, -np.inf, np.fmax)


def sigmoid_overflows(x):
    """sigmoid as 1 - e / (1 + e) with e = exp(-x): for large negative x, e is inf and inf / inf is NaN
    (accurate enough everywhere else: the normal cases and sigmoid(-60) pass)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-x)
        return (1 - e / (1 + e)).astype(x.dtype, copy=False)


def _memory_order_as_c(x):
    """What C code handed ``x``'s data pointer and shape reads: ``x``'s elements in memory order taken as
    a C-contiguous array of ``x``'s shape (the right values only when ``x`` is C-contiguous)."""
    return x.ravel(order="K").reshape(x.shape)


def tanh_ignores_strides(x):
    """tanh as the flat loop ``out[i] = tanh(in[i])`` over the input's buffer, its strides ignored: right
    for C-contiguous input, but a column-major one (a transposed view) comes out with its elements
    permuted."""
    return np.tanh(_memory_order_as_c(x))


MUTANTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "same_wrong_side": ("conv2d", same_on_wrong_side),
    "groups_ignored": ("conv2d", groups_ignored),
    "dilation_ignored": ("conv2d", dilation_ignored),
    "weights_flipped": ("conv2d", weights_flipped),
    "bias_dropped": ("conv2d", bias_dropped),
    "ceil_rule_ignored": ("max_pool2d", ceil_rule_ignored),
    "max_pool_zero_padding": ("max_pool2d", max_pool_zero_padding),
    "count_include_pad_divisor": ("avg_pool2d", divisor_always_window),
    "variance_swapped": ("batch_norm", variance_swapped),
    "momentum_reversed": ("batch_norm", momentum_reversed),
    "matmul_broadcast": ("matmul", matmul_no_broadcast),
    "softmax_unshifted": ("softmax", softmax_unshifted),
    "relu_backward_leaky": ("relu_backward", relu_backward_leaky),
    "conv_backward_input_unflipped": ("conv2d_backward_input", conv_backward_input_unflipped),
    # side effects, sizes and special values
    "relu_in_place": ("relu", relu_in_place),
    "add_reused_buffer": ("add", add_reused_buffer),
    "conv_batch_remainder": ("conv2d", conv_batch_remainder),
    "max_pool_drops_nan": ("max_pool2d", max_pool_drops_nan),
    "sigmoid_overflows": ("sigmoid", sigmoid_overflows),
    "tanh_ignores_strides": ("tanh", tanh_ignores_strides),
}
# Mutants only inputs passed as views catch (the suite's `Case.layout` cases): every other case hands
# the kernel C-contiguous arrays.
CAUGHT_BY_VIEWS_ONLY = frozenset({"tanh_ignores_strides"})
# The forward op whose gradient check a broken backward kernel must fail.
GRADIENT_OF = {"relu_backward": "relu", "conv2d_backward_input": "conv2d"}


class NumpyVariant:
    """A backend plugin named ``name``: the NumPy backend's kernels, with ``replace`` swapped in (op ->
    kernel function), on one CPU device."""

    def __init__(self, name: str, replace: dict[str, Callable[..., Any]], description: str = "") -> None:
        self.name, self.replace, self.description = name, replace, description

    @hookimpl
    def opdispatch_backend_info(self) -> BackendInfo:
        return BackendInfo(name=self.name, version="mutant", description=self.description)

    @hookimpl
    def opdispatch_devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(index=0, name=self.description or self.name)]

    @hookimpl
    def opdispatch_kernels(self) -> list[Kernel]:
        kept = [k for k in numpy_plugin.opdispatch_kernels() if k.op not in self.replace]
        return kept + [Kernel(op, fn, dtypes=("float32", "float64")) for op, fn in self.replace.items()]

    @hookimpl
    def opdispatch_from_numpy(self, array: np.ndarray, device: Any) -> np.ndarray:
        return np.array(array, copy=True)

    @hookimpl
    def opdispatch_to_numpy(self, data: np.ndarray, device: Any) -> np.ndarray:
        return np.array(data, copy=True)


def make_mutant_plugin(name: str) -> object:
    """A backend ``mutant_<name>``: the NumPy kernels with ``MUTANTS[name]`` swapped in."""
    op, broken = MUTANTS[name]
    return NumpyVariant(f"mutant_{name}", {op: broken}, f"NumPy with a broken {op}")
