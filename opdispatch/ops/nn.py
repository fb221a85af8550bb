"""The nn family: softmax, log_softmax, the classification loss softmax_cross_entropy and its
gradient op, and dropout. softmax and log_softmax decompose into max-shifted exp, sum and log."""

from __future__ import annotations

import re
from typing import Any, Union

import numpy as np

from .. import reference
from ..attrs import AXIS, KernelForm, _is_int, to_axis, to_float
from ..dtypes import is_integer
from ..errors import DTypeError, InvalidArgumentError, ShapeError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta, passthrough
from ._checks import float_inputs, require_min_rank, require_positive_dims_but_batch, require_rank

FAMILY = "nn"


def _infer_softmax(op, metas, attrs):
    (x,) = metas
    float_inputs(op, [("x", x)])
    require_min_rank(op, "x", x, 1)
    axis = to_axis(op, "axis", attrs["axis"], len(x.shape))
    if x.shape[axis] == 0:
        raise ShapeError(f"{op}: argument 'x' got shape {x.shape}, empty along axis {attrs['axis']!r}; allowed: "
                         f"size >= 1 along the softmax axis ({op} over nothing is undefined)")
    return [x], {"axis": axis}


def _axis_length(metas, attrs):
    return metas[0].shape[attrs["axis"]]


def _xent_terms(metas, attrs):
    return metas[0].shape[0] * metas[0].shape[1]


def _xent_backward_terms(metas, attrs):
    return metas[0].shape[1]


def _infer_xent(op, metas, attrs):
    logits, labels = metas
    dtype = float_inputs(op, [("logits", logits)])
    require_rank(op, "logits", logits, 2, "(N, C)")
    require_positive_dims_but_batch(op, "logits", logits)
    if not is_integer(labels.dtype):
        raise DTypeError(f"{op}: argument 'labels' got dtype {labels.dtype.name}; allowed: an integer dtype "
                         f"(class indices)")
    if labels.shape != logits.shape[:1]:
        raise ShapeError(f"{op}: argument 'labels' got shape {labels.shape}; allowed: ({logits.shape[0]},), one "
                         f"class index per row of logits {logits.shape}")
    return [TensorMeta((), dtype)], attrs


def label_checker(op: str):
    """``check_values`` for ops whose inputs start with (logits (N, C), labels (N,)): every label
    must be a class index in [0, C). ``arrays`` holds the logits' `TensorMeta` and the labels' values."""

    def check(arrays, attrs):
        logits, labels = arrays[0], np.asarray(arrays[1])
        n_classes = logits.shape[1]
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidArgumentError(f"{op}: argument 'labels' got {int(labels[i])} at index {i}; "
                                       f"allowed: class indices in [0, {n_classes - 1}]")

    return check


_check_labels = label_checker("softmax_cross_entropy")


def _softmax(F, x, *, axis):
    e = F.exp(x - F.max(x, axis=axis, keepdims=True))
    return e / F.sum(e, axis=axis, keepdims=True)


def _log_softmax(F, x, *, axis):
    shifted = x - F.max(x, axis=axis, keepdims=True)
    return shifted - F.log(F.sum(F.exp(shifted), axis=axis, keepdims=True))


def _softmax_vjp(F, rec, grads):
    (y,), (dy,) = rec.outputs, grads
    return [y * (dy - F.sum(dy * y, axis=rec.attrs["axis"], keepdims=True))]


def _log_softmax_vjp(F, rec, grads):
    (y,), (dy,) = rec.outputs, grads
    return [dy - F.exp(y) * F.sum(dy, axis=rec.attrs["axis"], keepdims=True)]


SOFTMAX = OpSchema(name="softmax", family=FAMILY, inputs=(Input("x"),), attrs=(Attr("axis", -1, passthrough, AXIS),),
                   infer=_infer_softmax, reference=reference.nn.softmax, doc="exp(x) normalised along axis",
                   reduction_length=_axis_length, tolerance_factor=4.0, vjp=_softmax_vjp,
                   decomposition=Decomposition(_softmax, uses=("max", "sub", "exp", "sum", "div")))
LOG_SOFTMAX = OpSchema(name="log_softmax", family=FAMILY, inputs=(Input("x"),),
                       attrs=(Attr("axis", -1, passthrough, AXIS),),
                       infer=_infer_softmax, reference=reference.nn.log_softmax, doc="x - logsumexp(x) along axis",
                       reduction_length=_axis_length, tolerance_factor=4.0, vjp=_log_softmax_vjp,
                       decomposition=Decomposition(_log_softmax, uses=("max", "sub", "exp", "sum", "log")))
SOFTMAX_CROSS_ENTROPY = OpSchema(
    name="softmax_cross_entropy", family=FAMILY, inputs=(Input("logits"), Input("labels", kind="int")), attrs=(),
    infer=_infer_xent, reference=reference.nn.softmax_cross_entropy,
    doc="mean over the batch of -log_softmax(logits)[i, labels[i]]; an empty batch (N = 0) gives NaN, the "
        "mean of no terms (as PyTorch's reduction='mean' and NumPy's mean), and its gradient is an empty (0, C) array",
    reduction_length=_xent_terms, tolerance_factor=4.0,
    check_values=_check_labels,
    vjp=lambda F, rec, g: [F.softmax_cross_entropy_backward(*rec.inputs, g[0]), None])


def _infer_xent_backward(op, metas, attrs):
    logits, labels, dloss = metas
    _infer_xent(op, [logits, labels], attrs)
    dtype = float_inputs(op, [("logits", logits), ("dloss", dloss)])
    require_rank(op, "dloss", dloss, 0, "(a scalar: the gradient of the mean loss)")
    return [TensorMeta(logits.shape, dtype)], attrs


SOFTMAX_CROSS_ENTROPY_BACKWARD = OpSchema(
    name="softmax_cross_entropy_backward", family=FAMILY,
    inputs=(Input("logits"), Input("labels", kind="int"), Input("dloss")), attrs=(),
    infer=_infer_xent_backward, reference=reference.nn.softmax_cross_entropy_backward,
    doc="(softmax(logits) - onehot(labels)) * dloss / N; an empty (0, C) array for an empty batch (N = 0)",
    reduction_length=_xent_backward_terms, tolerance_factor=4.0,
    check_values=label_checker("softmax_cross_entropy_backward"),
    no_vjp="softmax_cross_entropy_backward has no gradient rule yet (second derivatives of the loss)")


# -- dropout ----------------------------------------------------------------------------------

class RunSeed(str):
    """The seed of a dropout node that draws a fresh seed from ``od.random`` each time its graph runs.

    ``od.dropout(x, seed=None)`` draws its seed when it is called; traced by ``od.function`` it
    cannot (the graph runs many times), so the tracer gives it ``RunSeed(k)``, the k-th draw of the
    traced call, and the graph executor replaces every ``RunSeed(k)`` by the k-th of the seeds it
    draws from ``od.random`` at the start of each run -- the draws eager mode makes, in its order.
    The gradient of a dropout carries the same marker, hence the same mask. It is the string
    ``"per_run:<k>"`` (so saved graphs store it as it prints); kernels never receive one."""

    __slots__ = ()
    PREFIX = "per_run:"
    PATTERN = re.compile(r"per_run:(0|[1-9][0-9]{0,8})")

    def __new__(cls, index: int) -> "RunSeed":
        return super().__new__(cls, f"{cls.PREFIX}{int(index)}")

    @property
    def draw(self) -> int:
        """k: which of a run's draws this is."""
        return int(self[len(self.PREFIX):])


SEED_LIMIT = 1 << 64


def to_seed(op: str, arg: str, value: Any) -> Union[int, RunSeed]:
    """A dropout seed: an int in [0, 2**64), or a `RunSeed` (also as its text ``"per_run:<k>"``)."""
    if _is_int(value) and 0 <= value < SEED_LIMIT:
        return int(value)
    if isinstance(value, str) and RunSeed.PATTERN.fullmatch(value):
        return value if isinstance(value, RunSeed) else RunSeed(int(value[len(RunSeed.PREFIX):]))
    raise arg_error(op, arg, value, "an int in [0, 2**64) (None draws one from od.random)")


def _dropout_p(op: str, arg: str, value: Any) -> float:
    return to_float(op, arg, value, low=0.0, high=1.0)


def _infer_dropout(op, metas, attrs):
    (x,) = metas
    float_inputs(op, [("x", x)])
    return [x], attrs


DROPOUT = OpSchema(
    name="dropout", family=FAMILY, inputs=(Input("x"),),
    attrs=(Attr("p", 0.5, _dropout_p, KernelForm("a float in [0, 1]",
                                                 lambda v, m: isinstance(v, float) and 0 <= v <= 1)),
           Attr("seed", None, to_seed, KernelForm("an int (seed=None arrives as one drawn from od.random)",
                                                  lambda v, m: _is_int(v)))),
    infer=_infer_dropout, reference=reference.nn.dropout,
    doc="x times a mask of 1 / (1 - p) (kept) and 0 (dropped, probability p), the mask a hash of (seed, element "
        "index) that every device computes bit for bit (opdispatch.reference.nn.dropout_keep); p = 1 gives x * 0",
    vjp=lambda F, rec, g: [F.dropout(g[0], p=rec.attrs["p"], seed=rec.attrs["seed"])])
