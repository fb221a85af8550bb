"""The compare family: element-wise comparisons (bool outputs) and ``where`` (select by a bool mask).

Their operands are ``'value'`` inputs: float, int32, int64 or bool tensors of one dtype (a Python
number beside a tensor takes its dtype), broadcast as NumPy does. Comparisons follow IEEE (a NaN
compares unequal to everything, itself included; -0.0 == 0.0). No gradient flows through a
comparison (its vjp gives None), so ``where(x > 0, x, 0)`` is differentiable in x.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import reference
from ..dtypes import KERNEL_DTYPES
from ..errors import DTypeError, ShapeError
from ..schema import Decomposition, Input, OpSchema, TensorMeta
from ..shapes import broadcast_shapes
from ._checks import value_inputs
from ._rules import unbroadcast

FAMILY = "compare"

VALUE_DTYPES: tuple[np.dtype, ...] = KERNEL_DTYPES
"""The dtypes a comparison's operands may have (where's ``a`` and ``b``: the same but bool)."""
BOOL = np.dtype("bool")


def _broadcast(op: str, named) -> tuple:
    shape = named[0][1].shape
    for _, meta in named[1:]:
        out = broadcast_shapes(shape, meta.shape)
        if out is None:
            listing = " and ".join(f"{n!r} {m.shape}" for n, m in named)
            raise ShapeError(f"{op}: arguments {listing} do not broadcast; allowed: shapes whose trailing "
                             f"dimensions are equal or 1 (NumPy broadcasting)")
        shape = out
    return shape


def _infer_compare(op, metas, attrs):
    a, b = metas
    named = [("a", a), ("b", b)]
    value_inputs(op, named)
    return [TensorMeta(_broadcast(op, named), BOOL)], attrs


NO_GRADIENT = ("a comparison returns bool, piecewise constant in its inputs: no gradient flows (od.where sends its "
               "gradient to its values, none to its cond, so where(x > 0, x, 0) is differentiable in x)")


def _compare(name: str, doc: str, decomposition: Optional[Decomposition] = None) -> OpSchema:
    return OpSchema(name=name, family=FAMILY, inputs=(Input("a", kind="value"), Input("b", kind="value")), attrs=(),
                    infer=_infer_compare, reference=getattr(reference.compare, name), doc=doc, no_vjp=NO_GRADIENT,
                    decomposition=decomposition)


EQUAL = _compare("equal", "a == b (bool) with NumPy broadcasting; NaN compares unequal")
NOT_EQUAL = _compare("not_equal", "a != b (bool) with NumPy broadcasting; NaN compares unequal")
# a < b is b > a exactly (NaN included): a device with greater / greater_equal kernels runs these too
LESS = _compare("less", "a < b (bool) with NumPy broadcasting",
                Decomposition(lambda F, a, b: F.greater(b, a), uses=("greater",)))
LESS_EQUAL = _compare("less_equal", "a <= b (bool) with NumPy broadcasting",
                      Decomposition(lambda F, a, b: F.greater_equal(b, a), uses=("greater_equal",)))
GREATER = _compare("greater", "a > b (bool) with NumPy broadcasting")
GREATER_EQUAL = _compare("greater_equal", "a >= b (bool) with NumPy broadcasting")


def _infer_where(op, metas, attrs):
    cond, a, b = metas
    if cond.dtype != BOOL:
        raise DTypeError(f"{op}: argument 'cond' got dtype {cond.dtype.name}; allowed: bool (make a mask with a "
                         f"comparison, e.g. od.greater(x, 0) or x > 0)")
    dtype = value_inputs(op, [("a", a), ("b", b)], VALUE_DTYPES[:-1])
    return [TensorMeta(_broadcast(op, [("cond", cond), ("a", a), ("b", b)]), dtype)], attrs


def _where_vjp(F, rec, grads):
    """The output gradient where cond holds to a, elsewhere to b, each summed back to its shape."""
    cond, a, b = rec.inputs
    g = grads[0]
    zero = 0.0
    return [None,
            unbroadcast(F, F.where(cond, g, zero), a.shape) if rec.wants(1) else None,
            unbroadcast(F, F.where(cond, zero, g), b.shape) if rec.wants(2) else None]


WHERE = OpSchema(
    name="where", family=FAMILY,
    inputs=(Input("cond", kind="bool"), Input("a", kind="value"), Input("b", kind="value")), attrs=(),
    infer=_infer_where, reference=reference.compare.where,
    doc="a where cond, else b, all three broadcast (cond bool; a and b of one float or int dtype)",
    vjp=_where_vjp)
