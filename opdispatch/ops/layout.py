"""The layout family: reshape, transpose, flatten, broadcast_to, squeeze, unsqueeze, pad, slice,
concat, split, gather and scatter_add (``t[...]`` is built from slice, reshape, transpose and gather,
see `opdispatch.indexing`).

squeeze and unsqueeze are reshapes (their decomposition), split is one slice per part (its
decomposition), so backends need no kernel for them.

pad, slice and concat are the movement primitives the decompositions of windowed ops are built
from (im2col is a pad, one strided slice per kernel tap and a concat), so a backend with kernels
for these, matmul and the elementwise and reduce ops can run convolutions and pooling.

They move values of any dtype (``'value'`` inputs: float, int32, int64 or bool, e.g. labels, indices
and masks), so ``t[key]``, ``t.reshape``, ``t.T`` and ``od.concat`` work on int and bool tensors and give
NumPy's results; scatter_add sums, so it takes float and int updates only. No gradient flows into an
int or bool tensor (the tape tracks float tensors only, so their rules are never asked for).
"""

from __future__ import annotations

import builtins
import math
from typing import Any, Optional

import numpy as np

from .. import reference
from ..attrs import AXES, AXIS, FLOAT, INT_MAX, SHAPE, KernelForm, _is_int, first_ndim, is_ints, one_of, to_axis, \
    to_float, to_shape
from ..dtypes import KERNEL_DTYPES
from ..errors import DTypeError, ShapeError, TensorIndexError, arg_error
from ..schema import Attr, Decomposition, Input, OpSchema, TensorMeta, passthrough
from ..shapes import broadcast_shapes
from ._checks import MAX_ELEMENTS, prod, value_inputs
from ._rules import unbroadcast

FAMILY = "layout"

VALUE_DTYPES: tuple[np.dtype, ...] = KERNEL_DTYPES
"""The dtypes the layout ops move: float, int32, int64 and bool (scatter_add: all but bool)."""
BOOL = np.dtype("bool")
SCATTER_DTYPES: tuple[np.dtype, ...] = tuple(d for d in VALUE_DTYPES if d != BOOL)
"""scatter_add's updates: float or int (sums; a bool sum has no NumPy meaning to keep)."""


X = (Input("x", kind="value"),)
"""The one input of most layout ops: a tensor of values (float, int32, int64 or bool)."""


def _check_size(op: str, arg: str, value: Any, shape: tuple) -> None:
    if prod(shape) >= MAX_ELEMENTS:
        raise arg_error(op, arg, value, f"a result of at most {MAX_ELEMENTS - 1} elements (this gives shape "
                        f"{shape})", ShapeError)


# -- reshape, transpose, flatten, broadcast_to --------------------------------------------------

def _infer_reshape(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    shape = attrs["shape"]
    if prod(d for d in shape if d > 0) > 2**63 - 1:
        raise arg_error(op, "shape", shape, "dimensions whose product fits in int64", ShapeError)
    size = prod(x.shape)
    known = prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise arg_error(op, "shape", shape, f"a shape whose -1 can be resolved for {size} elements "
                            f"(input shape {x.shape})", ShapeError)
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise arg_error(op, "shape", shape, f"a shape with {size} elements (input shape {x.shape})", ShapeError)
    return [TensorMeta(shape, dtype)], {"shape": shape}


def _infer_transpose(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    ndim = len(x.shape)
    axes = attrs["axes"]
    if axes is None:
        axes = tuple(reversed(range(ndim)))
    elif isinstance(axes, (tuple, list)) and len(axes) == ndim:
        axes = tuple(to_axis(op, "axes", a, ndim) for a in axes)
        if sorted(axes) != list(range(ndim)):
            raise arg_error(op, "axes", attrs["axes"], f"a permutation of range({ndim})")
    else:
        raise arg_error(op, "axes", axes, f"None or a permutation of range({ndim}) for input shape {x.shape}")
    return [TensorMeta(tuple(x.shape[a] for a in axes), dtype)], {"axes": axes}


def _infer_flatten(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    start = to_axis(op, "start_axis", attrs["start_axis"], len(x.shape))
    return [TensorMeta(x.shape[:start] + (prod(x.shape[start:]),), dtype)], {"start_axis": start}


def _target_shape(op: str, arg: str, value: Any) -> tuple[int, ...]:
    if _is_int(value):
        value = (value,)
    if isinstance(value, (tuple, list)) and all(_is_int(v) and 0 <= v <= INT_MAX for v in value):
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, f"a sequence of ints in [0, {INT_MAX}] (or one such int)")


def _infer_broadcast_to(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    shape = attrs["shape"]
    _check_size(op, "shape", shape, shape)
    if len(shape) < len(x.shape) or broadcast_shapes(tuple(x.shape), shape) != shape:
        raise arg_error(op, "shape", shape, f"a shape that x of shape {x.shape} broadcasts to under NumPy rules "
                        f"(at least {len(x.shape)} dimensions; each dimension of x equal to the matching "
                        f"trailing one or 1)", ShapeError)
    return [TensorMeta(shape, dtype)], {"shape": shape}


def _transpose_vjp(F, rec, grads):
    axes = rec.attrs["axes"]
    return [F.transpose(grads[0], tuple(sorted(range(len(axes)), key=lambda i: axes[i])))]


def _reshape_back(F, rec, grads):
    return [F.reshape(grads[0], rec.inputs[0].shape)]


def _flatten(F, x, *, start_axis):
    return F.reshape(x, x.shape[:start_axis] + (prod(x.shape[start_axis:]),))


AXIS_ATTR = Attr("axis", 0, passthrough, AXIS)
"""The ``axis`` of concat, split, gather and scatter_add (resolved by their shape inference)."""
PERMUTATION = KernelForm("a tuple, a permutation of range(ndim) (None arrives as the reversed axes)",
                         lambda v, m: is_ints(v) and sorted(v) == list(range(first_ndim(m))))

RESHAPE = OpSchema(name="reshape", family=FAMILY, inputs=X, attrs=(Attr("shape", None, to_shape),),
                   infer=_infer_reshape, reference=reference.layout.reshape,
                   doc="the same elements, row-major, under a new shape (one -1 is inferred)", vjp=_reshape_back)
TRANSPOSE = OpSchema(name="transpose", family=FAMILY, inputs=X, attrs=(Attr("axes", None, passthrough, PERMUTATION),),
                     infer=_infer_transpose, reference=reference.layout.transpose,
                     doc="permute axes (None reverses them)", vjp=_transpose_vjp)
FLATTEN = OpSchema(name="flatten", family=FAMILY, inputs=X,
                   attrs=(Attr("start_axis", 1, passthrough, AXIS),),
                   infer=_infer_flatten, reference=reference.layout.flatten,
                   doc="merge every axis from start_axis on into one", vjp=_reshape_back,
                   decomposition=Decomposition(_flatten, uses=("reshape",)))
BROADCAST_TO = OpSchema(
    name="broadcast_to", family=FAMILY, inputs=X, attrs=(Attr("shape", None, _target_shape, SHAPE),),
    infer=_infer_broadcast_to, reference=reference.layout.broadcast_to,
    doc="x broadcast to shape under NumPy rules",
    vjp=lambda F, rec, g: [unbroadcast(F, g[0], rec.inputs[0].shape)])


# -- squeeze, unsqueeze -------------------------------------------------------------------------

def _axis_list(op: str, arg: str, value: Any, optional: bool) -> Optional[tuple[int, ...]]:
    """Normaliser of squeeze/unsqueeze ``axis``: one int or a sequence of ints (None where ``optional``)."""
    if value is None and optional:
        return None
    if _is_int(value):
        return (int(value),)
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, ("None (every size-1 axis), " if optional else "") + "an int or a sequence of ints")


def _squeeze_axis(op: str, arg: str, value: Any) -> Optional[tuple[int, ...]]:
    return _axis_list(op, arg, value, True)


def _unsqueeze_axis(op: str, arg: str, value: Any) -> Optional[tuple[int, ...]]:
    return _axis_list(op, arg, value, False)


def _distinct_axes(op: str, given: Any, ndim: int) -> tuple[int, ...]:
    resolved = tuple(sorted(to_axis(op, "axis", a, ndim) for a in given))
    if len(set(resolved)) != len(resolved):
        raise arg_error(op, "axis", given, "distinct axes (each named once, negative ones counted from the end)")
    return resolved


def _infer_squeeze(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    given = attrs["axis"]
    if given is None:
        axes = tuple(a for a, d in enumerate(x.shape) if d == 1)
    else:
        axes = _distinct_axes(op, given, len(x.shape))
        for a in axes:
            if x.shape[a] != 1:
                raise arg_error(op, "axis", given, f"axes of size 1 (axis {a} of x, shape {x.shape}, has size "
                                f"{x.shape[a]})", ShapeError)
    shape = tuple(d for a, d in enumerate(x.shape) if a not in axes)
    return [TensorMeta(shape, dtype)], {"axis": axes}


def _infer_unsqueeze(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    given = attrs["axis"]
    ndim = len(x.shape) + len(given)  # axes count in the output (numpy.expand_dims, ONNX Unsqueeze)
    axes = _distinct_axes(op, given, ndim)
    dims = iter(x.shape)
    shape = tuple(1 if a in axes else next(dims) for a in range(ndim))
    return [TensorMeta(shape, dtype)], {"axis": axes}


def _squeeze(F, x, *, axis):
    return F.reshape(x, tuple(d for a, d in enumerate(x.shape) if a not in axis))


def _unsqueeze(F, x, *, axis):
    ndim = len(x.shape) + len(axis)
    dims = iter(x.shape)
    return F.reshape(x, tuple(1 if a in axis else next(dims) for a in range(ndim)))


SQUEEZE = OpSchema(
    name="squeeze", family=FAMILY, inputs=X, attrs=(Attr("axis", None, _squeeze_axis, AXES),),
    infer=_infer_squeeze, reference=reference.layout.squeeze,
    doc="x without the given size-1 axes (None: every size-1 axis); kernels receive the axes sorted, non-negative",
    vjp=_reshape_back, decomposition=Decomposition(_squeeze, uses=("reshape",)))
UNSQUEEZE = OpSchema(
    name="unsqueeze", family=FAMILY, inputs=X,
    attrs=(Attr("axis", None, _unsqueeze_axis, KernelForm(
        "a sorted tuple of distinct ints in [0, ndim of the result)",
        lambda v, m: is_ints(v, minimum=0) and list(v) == sorted(set(v)))),),
    infer=_infer_unsqueeze, reference=reference.layout.unsqueeze,
    doc="x with a size-1 axis inserted at each given axis of the result (negative axes count from the end of "
        "the result, as numpy.expand_dims and ONNX Unsqueeze)",
    vjp=_reshape_back, decomposition=Decomposition(_unsqueeze, uses=("reshape",)))


# -- pad --------------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge")


def _pads(op: str, arg: str, value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, (tuple, list)) and all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) and 0 <= v <= INT_MAX for v in p)
            for p in value):
        return tuple((int(a), int(b)) for a, b in value)
    raise arg_error(op, arg, value, f"a sequence of (before, after) pairs of ints in [0, {INT_MAX}], one pair per "
                    f"trailing axis")


def _mode(op: str, arg: str, value: Any) -> str:
    if value not in PAD_MODES:
        raise arg_error(op, arg, value, ", ".join(map(repr, PAD_MODES)))
    return str(value)


def _infer_pad(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    given = attrs["pads"]
    ndim = len(x.shape)
    if len(given) > ndim:
        raise arg_error(op, "pads", given, f"at most {ndim} (before, after) pairs for x of shape {x.shape}",
                        ShapeError)
    pads = ((0, 0),) * (ndim - len(given)) + tuple(given)
    mode = attrs["mode"]
    for axis, ((before, after), dim) in enumerate(zip(pads, x.shape)):
        if mode == "reflect" and (before or after) and max(before, after) >= dim:
            raise arg_error(op, "pads", given, f"reflect padding smaller than the padded dimension (axis {axis} has "
                            f"size {dim})", ShapeError)
        if mode == "edge" and (before or after) and dim == 0:
            raise arg_error(op, "pads", given, f"edge padding of non-empty axes only (axis {axis} is empty)",
                            ShapeError)
    shape = tuple(d + a + b for d, (a, b) in zip(x.shape, pads))
    _check_size(op, "pads", given, shape)
    if mode == "constant":
        _check_pad_value(op, attrs["value"], dtype)
    return [TensorMeta(shape, dtype)], {"pads": pads, "mode": mode, "value": attrs["value"]}


def _check_pad_value(op: str, value: float, dtype: np.dtype) -> None:
    """A constant pad value must be one of ``dtype``'s values: an integer in range for int x, 0 or 1
    (False or True) for bool x."""
    if dtype == BOOL:
        if value not in (0.0, 1.0):
            raise arg_error(op, "value", value, "0 or 1 (False or True) for a bool x")
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (math.isfinite(value) and value.is_integer() and info.min <= value <= info.max):
            raise arg_error(op, "value", value, f"an integer in [{info.min}, {info.max}] for x of dtype {dtype.name}")


def _pad_value(op: str, arg: str, value: Any) -> float:
    """A real number (a bool is 0.0 or 1.0, for bool tensors)."""
    return float(value) if isinstance(value, (bool, np.bool_)) else to_float(op, arg, value)


def _pad_axis_adjoint(F, g, axis: int, before: int, after: int, dim: int, mode: str):
    """The gradient, along one axis, of padding an axis of size ``dim`` by (before, after) in ``mode``."""
    if not before and not after:
        return g
    inner = _take(F, g, axis, before, before + dim)
    if mode == "constant":
        return inner
    ndim = len(g.shape)
    for side, width in (("before", before), ("after", after)):
        if not width:
            continue
        part = (_take(F, g, axis, 0, before) if side == "before"
                else _take(F, g, axis, before + dim, before + dim + after))
        if mode == "edge":  # every padded element copied the edge element
            edge = F.sum(part, axis=axis, keepdims=True)
            spot = (0, dim - 1) if side == "before" else (dim - 1, 0)
        else:  # reflect: padded element k (counting outwards) copied element k of the mirror image
            edge = _flip(F, part, axis)
            spot = (1, dim - 1 - width) if side == "before" else (dim - 1 - width, 1)
        pads = tuple(spot if a == axis else (0, 0) for a in range(ndim))
        inner = inner + F.pad(edge, pads)
    return inner


def _pad_vjp(F, rec, grads):
    (x,), a = rec.inputs, rec.attrs
    g = grads[0]
    for axis in reversed(range(len(x.shape))):  # numpy pads axis after axis: undo them in reverse
        before, after = a["pads"][axis]
        g = _pad_axis_adjoint(F, g, axis, before, after, x.shape[axis], a["mode"])
    return [g]


PADS = KernelForm("a tuple of one (before, after) pair of ints >= 0 per axis of x, leading axes included",
                  lambda v, m: isinstance(v, tuple) and len(v) == first_ndim(m) and all(is_ints(p, 2, 0) for p in v))

PAD = OpSchema(
    name="pad", family=FAMILY, inputs=X,
    attrs=(Attr("pads", None, _pads, PADS), Attr("mode", "constant", _mode, one_of("constant", "reflect", "edge")),
           Attr("value", 0.0, _pad_value, FLOAT)),
    infer=_infer_pad, reference=reference.layout.pad,
    doc="x padded on its trailing axes: with value (constant), mirrored without the edge (reflect) or with copies "
        "of the edge (edge), as numpy.pad",
    vjp=_pad_vjp)


# -- slice ------------------------------------------------------------------------------------

INDEX_LIMIT = 2**63


def _indices(allow_none: bool, optional: bool):
    """Normaliser of a slice attribute: ints (or one int); None entries where ``allow_none``; None
    for the whole attribute where ``optional``."""
    none = " or None" if allow_none else ""

    def normalize(op: str, arg: str, value: Any) -> Optional[tuple]:
        if value is None and optional:
            return None
        if _is_int(value):
            value = (value,)
        if isinstance(value, (tuple, list)) and all(
                (v is None and allow_none) or (_is_int(v) and -INDEX_LIMIT <= v < INDEX_LIMIT) for v in value):
            return tuple(None if v is None else int(v) for v in value)
        raise arg_error(op, arg, value, f"a sequence of ints{none} in [-2**63, 2**63) (or one int)")

    return normalize


def _infer_slice(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    ndim = len(x.shape)
    starts, ends = attrs["starts"], attrs["ends"]
    axes = attrs["axes"] if attrs["axes"] is not None else tuple(range(len(starts)))
    steps = attrs["steps"] if attrs["steps"] is not None else (1,) * len(starts)
    for name, given in (("ends", ends), ("axes", axes), ("steps", steps)):
        if len(given) != len(starts):
            raise arg_error(op, name, attrs[name], f"as many entries as starts ({len(starts)})", ShapeError)
    axes = tuple(to_axis(op, "axes", a, ndim) for a in axes)
    if len(set(axes)) != len(axes):
        raise arg_error(op, "axes", attrs["axes"], "distinct axes")
    if 0 in steps:
        raise arg_error(op, "steps", steps, "non-zero steps")
    canon = {a: (0, d, 1) for a, d in enumerate(x.shape)}
    shape = list(x.shape)
    for a, b, e, s in zip(axes, starts, ends, steps):
        lo, hi, step = builtins.slice(b, e, s).indices(x.shape[a])
        n = len(range(lo, hi, step))
        if n == 0:
            canon[a] = (0, 0, step)
        else:
            end = lo + step * (n - 1) + (1 if step > 0 else -1)
            canon[a] = (lo, end if end >= 0 else None, step)
        shape[a] = n
    kattrs = {"starts": tuple(canon[a][0] for a in range(ndim)), "ends": tuple(canon[a][1] for a in range(ndim)),
              "axes": tuple(range(ndim)), "steps": tuple(canon[a][2] for a in range(ndim))}
    return [TensorMeta(tuple(shape), dtype)], kattrs


def _take(F, x, axis: int, start: int, end: int):
    """``x[start:end]`` along ``axis``."""
    if start == 0 and end == x.shape[axis]:
        return x
    return F.slice(x, starts=(start,), ends=(end,), axes=(axis,))


def _flip(F, x, axis: int):
    """``x`` reversed along ``axis``."""
    return F.slice(x, starts=(x.shape[axis] - 1,), ends=(None,), axes=(axis,), steps=(-1,))


def slice_adjoint(F, g, input_shape: tuple, starts: tuple, steps: tuple):
    """The gradient of a canonical slice: ``g`` scattered into zeros of ``input_shape`` at the positions
    the slice read (every ``steps[a]``-th element from ``starts[a]``), written with pad, reshape and slice."""
    ndim = len(input_shape)
    pads = []
    for a in range(ndim):
        size, start, step, n = input_shape[a], starts[a], steps[a], g.shape[a]
        if n == 0:
            pads.append((0, size))
            continue
        if step < 0:  # read backwards: walk it forwards
            g = _flip(F, g, a) if n > 1 else g
            start, step = start + step * (n - 1), -step
        if step > 1 and n > 1:  # step - 1 zeros after each element, cut where the input ends
            shape = g.shape
            g = F.reshape(g, shape[:a + 1] + (1,) + shape[a + 1:])
            g = F.pad(g, ((0, 0),) * (a + 1) + ((0, step - 1),) + ((0, 0),) * (ndim - a - 1))
            g = F.reshape(g, shape[:a] + (n * step,) + shape[a + 1:])
            g = _take(F, g, a, 0, min(n * step, size - start))
        pads.append((start, size - start - g.shape[a]))
    return F.pad(g, tuple(pads)) if any(p != (0, 0) for p in pads) else g


PER_AXIS = KernelForm("a tuple with one entry per axis of x (Python slice bounds: ints, an end may be None)",
                      lambda v, m: isinstance(v, tuple) and len(v) == first_ndim(m)
                      and all(i is None or _is_int(i) for i in v))
SLICED_AXES = KernelForm("a sorted tuple of the axes the user sliced (starts, ends and steps already cover every "
                         "axis)", lambda v, m: is_ints(v, minimum=0) and list(v) == sorted(set(v)))

SLICE = OpSchema(
    name="slice", family=FAMILY, inputs=X,
    attrs=(Attr("starts", None, _indices(False, False), PER_AXIS),
           Attr("ends", None, _indices(True, False), PER_AXIS),
           Attr("axes", None, _indices(False, True), SLICED_AXES),
           Attr("steps", None, _indices(False, True), PER_AXIS)),
    infer=_infer_slice, reference=reference.layout.slice,
    doc="x[start:end:step] on the given axes (ONNX Slice, Python's clamping; an end of None runs to the end "
        "in the step's direction); kernels receive every axis in order",
    vjp=lambda F, rec, g: [slice_adjoint(F, g[0], rec.inputs[0].shape, rec.attrs["starts"], rec.attrs["steps"])])


# -- concat -----------------------------------------------------------------------------------

def _infer_concat(op, metas, attrs):
    named = [(f"tensors[{i}]", m) for i, m in enumerate(metas)]
    dtype = value_inputs(op, named)
    first = metas[0]
    ndim = len(first.shape)
    if ndim == 0:
        raise arg_error(op, "tensors", "a 0-d tensor", "tensors of rank >= 1", ShapeError)
    axis = to_axis(op, "axis", attrs["axis"], ndim)
    for name, m in named[1:]:
        if len(m.shape) != ndim or any(d != e for i, (d, e) in enumerate(zip(m.shape, first.shape)) if i != axis):
            raise ShapeError(f"{op}: argument {name!r} got shape {m.shape}; allowed: the shape of tensors[0] "
                             f"{first.shape} except along axis {axis}")
    shape = first.shape[:axis] + (sum(m.shape[axis] for m in metas),) + first.shape[axis + 1:]
    return [TensorMeta(shape, dtype)], {"axis": axis}


def _concat_vjp(F, rec, grads):
    axis, g = rec.attrs["axis"], grads[0]
    out, start = [], 0
    for i, x in enumerate(rec.inputs):
        end = start + x.shape[axis]
        out.append(_take(F, g, axis, start, end) if rec.wants(i) else None)
        start = end
    return out


CONCAT = OpSchema(
    name="concat", family=FAMILY, inputs=(Input("tensors", kind="value", variadic=True),),
    attrs=(AXIS_ATTR,),
    infer=_infer_concat, reference=reference.layout.concat,
    doc="the tensors joined along axis (same shapes elsewhere)", vjp=_concat_vjp)


# -- split ------------------------------------------------------------------------------------

def _sections(op: str, arg: str, value: Any) -> Any:
    """Normaliser of split ``sections``: an int >= 1 (equal parts) or a non-empty sequence of sizes >= 0."""
    if _is_int(value) and 1 <= value <= INT_MAX:
        return int(value)
    if isinstance(value, (tuple, list)) and value and all(_is_int(v) and 0 <= v <= INT_MAX for v in value):
        return tuple(int(v) for v in value)
    raise arg_error(op, arg, value, f"an int in [1, {INT_MAX}] (that many equal parts) or a non-empty sequence of "
                    f"part sizes >= 0 summing to the size of the axis")


def _infer_split(op, metas, attrs):
    (x,) = metas
    dtype = value_inputs(op, [("x", x)])
    if not x.shape:
        raise arg_error(op, "x", "a 0-d tensor", "a tensor of rank >= 1", ShapeError)
    axis = to_axis(op, "axis", attrs["axis"], len(x.shape))
    size, sections = x.shape[axis], attrs["sections"]
    if isinstance(sections, int):
        if size % sections:
            raise arg_error(op, "sections", sections, f"a number of parts that divides the size {size} of axis "
                            f"{axis} (x has shape {x.shape}); or a list of part sizes", ShapeError)
        sizes = (size // sections,) * sections
    else:
        sizes = sections
        if sum(sizes) != size:
            raise arg_error(op, "sections", list(sections), f"part sizes summing to {size}, the size of axis {axis} "
                            f"(x has shape {x.shape}); they sum to {sum(sizes)}", ShapeError)
    outs = [TensorMeta(x.shape[:axis] + (n,) + x.shape[axis + 1:], dtype) for n in sizes]
    return outs, {"sections": sizes, "axis": axis}


def _split(F, x, *, sections, axis):
    out, start = [], 0
    for n in sections:
        out.append(F.slice(x, starts=(start,), ends=(start + n,), axes=(axis,)))
        start += n
    return tuple(out) if len(out) > 1 else out[0]  # one output: a tensor, as every single-output op gives


def _split_vjp(F, rec, grads):
    """The output gradients joined along the axis; a part that got no gradient contributes zeros (a
    constant pad of its neighbour, so no zeros tensor is made)."""
    axis, sizes = rec.attrs["axis"], rec.attrs["sections"]
    ndim = len(rec.inputs[0].shape)

    def padded(g, before: int, after: int):
        if not before and not after:
            return g
        return F.pad(g, tuple((before, after) if a == axis else (0, 0) for a in range(ndim)))

    pieces, zeros = [], 0
    for g, n in zip(grads, sizes):
        if g is None:
            zeros += n
            continue
        pieces.append(padded(g, zeros, 0))
        zeros = 0
    pieces[-1] = padded(pieces[-1], 0, zeros)  # the autodiff calls a rule only when some output has a gradient
    return [pieces[0] if len(pieces) == 1 else F.concat(pieces, axis=axis)]


SPLIT = OpSchema(
    name="split", family=FAMILY, inputs=X,
    attrs=(Attr("sections", None, _sections, KernelForm(
        "a tuple of ints >= 0, the size of each part (an int count arrives as equal sizes)",
        lambda v, m: is_ints(v, minimum=0))), AXIS_ATTR),
    infer=_infer_split, reference=reference.layout.split,
    doc="x cut along axis into parts: sections equal ones (an int that divides the axis) or of the given sizes "
        "(summing to the axis); one output per part; kernels receive the sizes",
    vjp=_split_vjp, decomposition=Decomposition(_split, uses=("slice",)))


# -- gather, scatter_add (advanced indexing and its adjoint) ----------------------------------

INDEX_DTYPES = (np.dtype("int32"), np.dtype("int64"))


def _index_dtype(op: str, indices: TensorMeta) -> None:
    if indices.dtype not in INDEX_DTYPES:
        raise DTypeError(f"{op}: argument 'indices' got dtype {indices.dtype.name}; allowed: int32 or int64 "
                         f"(a boolean mask indexes through t[mask], which turns it into indices)")


def _infer_gather(op, metas, attrs):
    x, indices = metas
    dtype = value_inputs(op, [("x", x)])
    _index_dtype(op, indices)
    if not x.shape:
        raise arg_error(op, "x", "a 0-d tensor", "a tensor of rank >= 1", ShapeError)
    axis = to_axis(op, "axis", attrs["axis"], len(x.shape))
    shape = x.shape[:axis] + tuple(indices.shape) + x.shape[axis + 1:]
    _check_size(op, "indices", f"shape {indices.shape}", shape)
    return [TensorMeta(shape, dtype)], {"axis": axis}


def _infer_scatter_add(op, metas, attrs):
    updates, indices = metas
    dtype = value_inputs(op, [("updates", updates)], SCATTER_DTYPES)
    _index_dtype(op, indices)
    size, axis, k = attrs["size"], attrs["axis"], len(indices.shape)
    ndim = len(updates.shape) - k + 1  # the rank of the result
    if ndim < 1:
        raise ShapeError(f"{op}: argument 'updates' got shape {updates.shape}; allowed: a shape holding the "
                         f"indices' shape {indices.shape} at axis {axis}")
    axis = to_axis(op, "axis", axis, ndim)
    if tuple(updates.shape[axis:axis + k]) != tuple(indices.shape):
        raise ShapeError(f"{op}: argument 'updates' got shape {updates.shape}; allowed: a shape holding the "
                         f"indices' shape {indices.shape} at axis {axis} (what gather gives)")
    shape = updates.shape[:axis] + (size,) + updates.shape[axis + k:]
    _check_size(op, "size", size, shape)
    return [TensorMeta(shape, dtype)], {"axis": axis, "size": size}


def _size(op: str, arg: str, value: Any) -> int:
    if _is_int(value) and 0 <= value <= INT_MAX:
        return int(value)
    raise arg_error(op, arg, value, f"an int in [0, {INT_MAX}] (the length of the result's axis)")


def index_checker(op: str):
    """``check_values`` of gather and scatter_add: every index in [-n, n) for the indexed axis of size n
    (a negative one counts from the end), else `TensorIndexError` naming the axis, index and size."""

    def check(arrays, attrs):
        first, indices = arrays[0], np.asarray(arrays[1])
        axis = attrs["axis"]
        n = attrs["size"] if "size" in attrs else first.shape[axis]
        bad = (indices < -n) | (indices >= n)
        if bad.any():
            pos = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), indices.shape))
            raise TensorIndexError(f"{op}: index {int(indices[pos])} (at position {pos} of 'indices') is out of "
                                       f"range for axis {axis} with size {n}; allowed: indices in [{-n}, {n - 1}]")

    return check


def _scatter_terms(metas, attrs):
    return max(prod(metas[1].shape), 1)  # at most every update lands on one element


GATHER = OpSchema(
    name="gather", family=FAMILY, inputs=(Input("x", kind="value"), Input("indices", kind="int")),
    attrs=(AXIS_ATTR,),
    infer=_infer_gather, reference=reference.layout.gather, check_values=index_checker("gather"),
    doc="numpy.take(x, indices, axis): the slices of x along axis at the int32/int64 indices (negative ones "
        "count from the end; out of range is a TensorIndexError); the result has the indices' shape in "
        "place of that axis",
    vjp=lambda F, rec, g: [F.scatter_add(g[0], rec.inputs[1], axis=rec.attrs["axis"],
                                         size=rec.inputs[0].shape[rec.attrs["axis"]]), None])
SCATTER_ADD = OpSchema(
    name="scatter_add", family=FAMILY, inputs=(Input("updates", kind="value"), Input("indices", kind="int")),
    attrs=(AXIS_ATTR, Attr("size", None, _size, KernelForm("an int >= 0: the length of the result's axis",
                                                            lambda v, m: _is_int(v)))),
    infer=_infer_scatter_add, reference=reference.layout.scatter_add, check_values=index_checker("scatter_add"),
    reduction_length=_scatter_terms,
    doc="the adjoint of gather: zeros whose axis has length size, each slice of updates added at its index "
        "along axis (repeated indices accumulate, in order); updates has the indices' shape in place of that axis",
    vjp=lambda F, rec, g: [F.gather(g[0], rec.inputs[1], axis=rec.attrs["axis"]), None])
