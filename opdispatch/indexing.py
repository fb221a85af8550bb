"""``t[key]`` with NumPy's rules, built from ops (so it is differentiable, traceable and runs on every
backend), and its functional updates `index_add` / `index_update` (tensors are immutable).

A key is planned once per (shape, key) into at most five ops:

1. basic indexing: one ``slice`` for every int (a length-1 slice), slice (any step) and ``...``;
2. advanced indexing (integer arrays, lists, int tensors, boolean masks -- a mask becomes its
   ``nonzero()`` indices, computed on the host): the indexed axes are brought together with a
   ``transpose`` when NumPy's rule puts the result in front (advanced indices not adjacent in the
   key), merged with a ``reshape``, and read with one ``gather`` of the raveled indices (NumPy's
   broadcasting of several index arrays, ints counting as 0-d arrays);
3. a final ``reshape`` drops the int axes and inserts the ``None`` axes.

Gradients come from those ops' rules (a gather's is a ``scatter_add``: repeated indices accumulate).
Under ``od.function`` a boolean mask given as a tensor would make the result's shape depend on data,
so it is refused (use ``od.where``); NumPy boolean masks and integer arrays are constants of the
graph; one int tensor index works anywhere (several are combined on the host, so only eagerly).

Eager calls with only basic indices (no tape, no tracer) run the slice and reshape kernels directly
from a per-device cache of plans: a few microseconds.
"""

from __future__ import annotations

import builtins
import math
from typing import Any, NamedTuple, Optional

import numpy as np

from . import recording
from .dispatch import choose, kernel_error
from .errors import ArgumentTypeError, InvalidArgumentError, TensorIndexError
from .ops import OPS
from .schema import TensorMeta
from .tensor import INDEXING, F, Tensor, make, tensor

_SLICE, _RESHAPE = OPS["slice"], OPS["reshape"]
_VALID = ("allowed: ints, slices (any step), ..., None, integer arrays, lists or int32/int64 tensors, and boolean "
          "masks (NumPy arrays or bool tensors)")


class Advanced(NamedTuple):
    """The advanced part of a plan: transpose ``perm`` (or None), reshape to ``merged`` (or None), then
    gather ``index`` (a host int64 array or an int tensor) along ``axis``, giving ``shape``."""

    perm: Optional[tuple[int, ...]]
    merged: Optional[tuple[int, ...]]
    index: Any
    axis: int
    shape: tuple[int, ...]


class Plan(NamedTuple):
    """How ``x[key]`` is computed: the canonical slice (None when every axis is whole), the shape after
    it, the advanced part (or None) and the result's shape."""

    starts: Optional[tuple]
    ends: tuple
    steps: tuple
    sliced: tuple[int, ...]
    advanced: Optional[Advanced]
    shape: tuple[int, ...]


def _is_traced(t: Tensor) -> bool:
    return type(t) is not Tensor and getattr(t, "_tracer", None) is not None


def _graph_error(traced: Any, what: str) -> Exception:
    """The graph tracer's own error class (`od.GraphTraceError`, from a layer above this one) with ``what``."""
    return type(traced._leak("t[...]"))(f"t[...]: {what}")


def _classify(item: Any) -> tuple[str, Any]:
    """One key entry as (kind, value): 'none', 'ellipsis', 'slice', 'int', 'array' (host int array or
    int tensor) or 'mask' (host bool array or bool tensor)."""
    if item is None:
        return "none", None
    if item is Ellipsis:
        return "ellipsis", None
    if type(item) is builtins.slice:
        return "slice", item
    if isinstance(item, (bool, np.bool_)):
        raise TensorIndexError(f"t[...]: got the bool {item!r} as an index; {_VALID} (a Python bool is not an int "
                               f"index here; use a boolean mask array)")
    if isinstance(item, (int, np.integer)):
        return "int", int(item)
    if isinstance(item, Tensor):
        if item.dtype.kind == "b":
            return "mask", item
        if item.dtype.kind in "iu":
            if item.dtype.name not in ("int32", "int64"):
                raise TensorIndexError(f"t[...]: got an index tensor of dtype {item.dtype.name}; {_VALID}")
            return "array", item
        raise TensorIndexError(f"t[...]: got an index tensor of dtype {item.dtype.name}; {_VALID}")
    if isinstance(item, (list, tuple, np.ndarray)):
        arr = np.asarray(item)
        if arr.dtype.kind == "b":
            return "mask", arr
        if arr.size == 0 and arr.dtype.kind == "f":  # [] is an empty integer index, as in NumPy
            arr = arr.astype(np.int64)
        if arr.dtype.kind in "iu":
            if arr.ndim == 0:
                return "int", int(arr)
            return "array", arr.astype(np.int64)
        raise TensorIndexError(f"t[...]: got an index array of dtype {arr.dtype}; {_VALID}")
    if hasattr(item, "__index__"):
        return "int", int(item.__index__())
    raise TensorIndexError(f"t[...]: got {type(item).__name__} {item!r} as an index; {_VALID}")


def _expand(shape: tuple[int, ...], key: Any) -> list[tuple[str, Any, int, int]]:
    """The key as entries (kind, value, axis of the input or -1, position in the key), the ellipsis
    expanded into whole slices and boolean masks into their ``nonzero()`` index arrays."""
    items = key if type(key) is tuple else (key,)
    classified = [_classify(it) for it in items]
    ndim = len(shape)
    used = sum(v.ndim if k == "mask" else k in ("slice", "int", "array") for k, v in classified)
    if sum(k == "ellipsis" for k, _ in classified) > 1:
        raise TensorIndexError("t[...]: got more than one ellipsis ('...'); allowed: at most one")
    if used > ndim:
        raise TensorIndexError(f"t[...]: too many indices for a tensor of shape {shape}: {ndim} axes, but {used} "
                               f"were indexed")
    out: list[tuple[str, Any, int, int]] = []
    axis = 0
    whole = builtins.slice(None)
    for pos, (kind, value) in enumerate(classified):
        if kind == "none":
            out.append((kind, None, -1, pos))
        elif kind == "ellipsis":
            out.append(("ellipsis", None, -1, pos))  # a marker: it separates advanced indices
            for _ in range(ndim - used):
                out.append(("slice", whole, axis, pos))
                axis += 1
        elif kind == "mask":
            if value.ndim == 0:
                raise TensorIndexError(f"t[...]: got a 0-d boolean index; {_VALID} (masks of at least one axis)")
            dims = shape[axis:axis + value.ndim]
            if tuple(value.shape) != tuple(dims):
                raise TensorIndexError(f"t[...]: the boolean mask of shape {tuple(value.shape)} does not match the "
                                       f"indexed axes {axis}..{axis + value.ndim - 1} of shape {dims} (tensor shape "
                                       f"{shape}); allowed: a mask of exactly the shape of the axes it indexes")
            if isinstance(value, Tensor):
                if _is_traced(value):
                    raise _graph_error(value,
                        "a boolean mask tensor under od.function: the result's shape would depend on the mask's "
                        "values, which are unknown while tracing; allowed: od.where(mask, t, 0) (same shape), a "
                        "NumPy boolean mask (a constant of the graph), or masking eagerly outside od.function")
                value = value.numpy()
            for idx in np.nonzero(value):
                out.append(("array", idx.astype(np.int64), axis, pos))
                axis += 1
        else:
            out.append((kind, value, axis, pos))
            axis += 1
    for _ in range(ndim - axis):  # trailing axes not named: whole
        out.append(("slice", whole, axis, len(classified)))
        axis += 1
    return out


def _canonical(lo: int, hi: int, step: int) -> tuple[int, Optional[int], int, int]:
    """(start, end, step, length) of Python's ``range(lo, hi, step)`` as the slice op's canonical form."""
    n = len(range(lo, hi, step))
    if n == 0:
        return 0, 0, 1, 0
    end = lo + step * (n - 1) + (1 if step > 0 else -1)
    return lo, (end if end >= 0 else None), step, n


def _check_host_index(arr: np.ndarray, axis: int, size: int) -> np.ndarray:
    bad = (arr < -size) | (arr >= size)
    if bad.any():
        i = int(np.argmax(bad.reshape(-1)))
        raise TensorIndexError(f"t[...]: index {int(arr.reshape(-1)[i])} is out of range for axis {axis} with size "
                               f"{size}; allowed: indices in [{-size}, {size - 1}]")
    return np.where(arr < 0, arr + size, arr)


def plan(shape: tuple[int, ...], key: Any) -> Plan:
    """The `Plan` of ``x[key]`` for ``x`` of ``shape`` (NumPy's rules; errors as NumPy raises them)."""
    entries = _expand(shape, key)
    ndim = len(shape)
    whole = [_canonical(0, d, 1) for d in shape]
    starts, ends, steps = [w[0] for w in whole], [w[1] for w in whole], [1] * ndim
    sliced = list(shape)
    trivial = True
    for kind, value, axis, _ in entries:
        if axis < 0:
            continue
        size = shape[axis]
        if kind == "int":
            if not -size <= value < size:
                raise TensorIndexError(f"t[...]: index {value} is out of range for axis {axis} with size {size}; "
                                       f"allowed: ints in [{-size}, {size - 1}]")
            i = value + size if value < 0 else value
            starts[axis], ends[axis], sliced[axis] = i, i + 1, 1
            trivial = trivial and size == 1
        elif kind == "slice":
            b, e, st, n = _canonical(*value.indices(size))
            starts[axis], ends[axis], steps[axis], sliced[axis] = b, e, st, n
            trivial = trivial and n == size and st == 1
    canon = (tuple(starts), tuple(ends), tuple(steps))
    arrays = [e for e in entries if e[0] == "array"]
    if not arrays:  # basic indexing: int axes dropped, None axes inserted
        out = []
        for kind, _, axis, _ in entries:
            if kind == "slice":
                out.append(sliced[axis])
            elif kind == "none":
                out.append(1)
        return Plan(None if trivial else canon[0], canon[1], canon[2], tuple(sliced), None, tuple(out))
    return _advanced(shape, entries, canon, trivial, tuple(sliced))


def _advanced(shape, entries, canon, trivial, sliced) -> Plan:
    adv = [e for e in entries if e[0] in ("int", "array")]
    axes = [e[2] for e in adv]
    positions = [e[3] for e in entries if e[0] in ("int", "array")]
    # NumPy: advanced indices next to each other in the key (nothing between) keep their place;
    # otherwise the indexed dimensions come first
    key_positions = sorted(set(positions))
    between = any(e[0] in ("slice", "none", "ellipsis") and key_positions[0] < e[3] < key_positions[-1]
                  for e in entries)
    adjacent = not between and key_positions == list(range(key_positions[0], key_positions[-1] + 1))
    tensors = [e for e in adv if e[0] == "array" and isinstance(e[1], Tensor)]
    dims = tuple(sliced[a] for a in axes)  # int axes have length 1 (index 0) after the slice
    if len(tensors) == 1 and all(e[0] == "int" for e in adv if e is not tensors[0]):
        index: Any = tensors[0][1]
        bshape = tuple(index.shape)
    else:
        host = []
        for kind, value, axis, _ in adv:
            if kind == "int":
                host.append(np.zeros((), np.int64))
                continue
            if isinstance(value, Tensor):
                if _is_traced(value):
                    raise _graph_error(value,
                        "several index tensors (or an index tensor with integer arrays) under od.function: they "
                        "are combined on the host; allowed under od.function: one int tensor index (with ints, "
                        "slices, ..., None), or NumPy integer arrays / lists (constants of the graph)")
                value = value.numpy().astype(np.int64)
            host.append(_check_host_index(value, axis, shape[axis]))
        try:
            broadcast = np.broadcast_arrays(*host)
        except ValueError:
            shapes = " ".join(str(h.shape) for h, e in zip(host, adv) if e[0] == "array")
            raise TensorIndexError(f"t[...]: the index arrays could not be broadcast together (shapes {shapes}); "
                                   f"allowed: index arrays whose shapes broadcast (NumPy rules)") from None
        bshape = broadcast[0].shape
        index = np.ravel_multi_index(tuple(broadcast), dims) if math.prod(dims) else broadcast[0]
        index = np.asarray(index, np.int64)
    ndim = len(shape)
    if adjacent:
        q, perm = axes[0], None
        order = list(range(ndim))
    else:
        q = 0
        order = axes + [a for a in range(ndim) if a not in axes]
        perm = tuple(order) if order != list(range(ndim)) else None
    rest_before = [sliced[a] for a in order[:q]]
    rest_after = [sliced[a] for a in order[q + len(axes):]]
    merged = tuple(rest_before) + (math.prod(dims),) + tuple(rest_after)
    permuted = tuple(sliced[a] for a in order)
    gathered = tuple(rest_before) + tuple(bshape) + tuple(rest_after)
    out: list[int] = []
    if not adjacent:
        out.extend(bshape)
    placed = not adjacent
    for kind, _, axis, _ in entries:
        if kind == "slice":
            out.append(sliced[axis])
        elif kind == "none":
            out.append(1)
        elif kind in ("int", "array") and not placed:
            out.extend(bshape)
            placed = True
    advanced = Advanced(perm, merged if merged != permuted else None, index, q, gathered)
    return Plan(None if trivial else canon[0], canon[1], canon[2], sliced, advanced, tuple(out))


# -- running a plan ---------------------------------------------------------------------------

def _key_signature(key: Any) -> Optional[tuple]:
    """A hashable form of a basic key (ints, slices, None, ...), or None for any other key."""
    items = key if type(key) is tuple else (key,)
    sig = []
    for it in items:
        kind = type(it)
        if kind is int:
            sig.append(it)
        elif kind is builtins.slice:
            sig.append((it.start, it.stop, it.step))
            if not all(v is None or type(v) is int for v in (it.start, it.stop, it.step)):
                return None
        elif it is None or it is Ellipsis:
            sig.append(it)
        else:
            return None
    return tuple(sig)


FAST_LIMIT = 4096


def _fast_entry(x: Tensor, sig: tuple, key: Any) -> Any:
    """(slice kernel or None, its attributes, sliced shape, reshape kernel or None, result shape) for a
    basic key on ``x``'s device, cached in the device's kernel table; False when the call needs the
    general path (no kernel, a decomposition)."""
    rt = x._rt
    table = rt.table
    ckey = ("t[...]", x._shape, x._dtype, sig)
    entry = table.fast_checked.get(ckey)
    if entry is not None:
        return entry
    p = plan(x._shape, key)
    entry = False
    meta = TensorMeta(x._shape, x._dtype)
    slice_fn = reshape_fn = None
    kattrs: dict = {}
    ok = True
    if p.starts is not None:
        nattrs = _SLICE.normalize({"starts": p.starts, "ends": p.ends, "steps": p.steps})
        _, kattrs = _SLICE.infer("slice", [meta], nattrs)
        slice_fn = choose(rt, _SLICE, (meta,), kattrs, x._dtype).fn
        ok = slice_fn is not None
    if ok and p.shape != p.sliced:
        rmeta = TensorMeta(p.sliced, x._dtype)
        _, rattrs = _RESHAPE.infer("reshape", [rmeta], _RESHAPE.normalize({"shape": p.shape}))
        reshape_fn = choose(rt, _RESHAPE, (rmeta,), rattrs, x._dtype).fn
        ok = reshape_fn is not None
    if ok:
        entry = (slice_fn, kattrs, p.sliced, reshape_fn, p.shape)
    if len(table.fast_checked) >= FAST_LIMIT:
        table.fast_checked.clear()
    table.fast_checked[ckey] = entry
    return entry


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]`` (see the module docstring)."""
    if not recording.ACTIVE[0] and type(x) is Tensor and (x._dtype in x._rt.info.dtype_set or x._dtype.kind in "iub"):
        sig = _key_signature(key)
        if sig is not None:
            entry = _fast_entry(x, sig, key)
            if entry:
                slice_fn, kattrs, sliced, reshape_fn, shape = entry
                data, rt = x._data, x._rt
                try:
                    if slice_fn is not None:
                        data = slice_fn(data, **kattrs)
                    if reshape_fn is not None:
                        data = reshape_fn(data, shape=shape)
                except Exception as exc:
                    raise kernel_error("slice" if slice_fn is not None else "reshape", rt, exc)  # noqa: B904
                if data.shape != shape or data.dtype != x._dtype:  # a kernel broke its promise: say so
                    from .dispatch import check_results

                    check_results("t[...]", rt, "", data, [TensorMeta(shape, x._dtype)])
                return make(data, shape, x._dtype, rt)
    return run_plan(x, plan(x.shape, key))


def run_plan(x: Tensor, p: Plan) -> Tensor:
    """Run plan ``p`` on ``x`` with ops (differentiable, traceable)."""
    y = x
    if p.starts is not None:
        y = F.slice(y, starts=p.starts, ends=p.ends, steps=p.steps)
    a = p.advanced
    if a is not None:
        if a.perm is not None:
            y = F.transpose(y, a.perm)
        if a.merged is not None:
            y = F.reshape(y, a.merged)
        y = F.gather(y, a.index, axis=a.axis)
    if tuple(y.shape) != p.shape:
        y = F.reshape(y, p.shape)
    return y


def scatter_plan(shape: tuple[int, ...], p: Plan, v: Tensor) -> Tensor:
    """The adjoint of `run_plan`: ``v`` (of the plan's result shape) placed into zeros of ``shape`` at
    the elements ``x[key]`` reads, added up where the key reads an element more than once."""
    from .ops.layout import slice_adjoint

    g = v
    a = p.advanced
    if a is not None:
        if tuple(g.shape) != a.shape:
            g = F.reshape(g, a.shape)
        permuted = tuple(p.sliced[i] for i in (a.perm or range(len(shape))))
        size = a.merged[a.axis] if a.merged is not None else permuted[a.axis]
        g = F.scatter_add(g, a.index, axis=a.axis, size=size)
        if a.merged is not None:
            g = F.reshape(g, permuted)
        if a.perm is not None:
            perm = a.perm
            g = F.transpose(g, tuple(sorted(range(len(perm)), key=lambda i: perm[i])))
    elif tuple(g.shape) != p.sliced:
        g = F.reshape(g, p.sliced)
    if p.starts is not None:
        g = slice_adjoint(F, g, shape, p.starts, p.steps)
    return g


def _as_values(t: Tensor, v: Any, shape: tuple[int, ...], op: str) -> Tensor:
    if not isinstance(v, Tensor):
        v = tensor(v, dtype=t.dtype, device=t.device)
    if tuple(v.shape) != shape:
        try:
            v = F.broadcast_to(v, shape)
        except InvalidArgumentError:
            raise InvalidArgumentError(f"{op}: argument 'value' got shape {tuple(v.shape)}; allowed: a shape that "
                                       f"broadcasts to {shape}, the shape of t[key]") from None
    return v


def index_add(t: Any, key: Any, value: Any) -> Tensor:
    """A new tensor: ``t`` with ``value`` (broadcast to the shape of ``t[key]``) added at ``t[key]``; where
    the key names an element more than once (repeated indices) every addition counts, as
    ``numpy.add.at``. Differentiable in ``t`` and ``value``; any key ``t[key]`` accepts."""
    if not isinstance(t, Tensor):
        t = tensor(t)
    p = plan(t.shape, key)
    return t + scatter_plan(t.shape, p, _as_values(t, value, p.shape, "index_add"))


def _repeats(p: Plan) -> bool:
    a = p.advanced
    if a is None:
        return False
    idx = a.index
    if isinstance(idx, Tensor):
        if _is_traced(idx):
            return False  # unknown while tracing: documented (repeated positions add up)
        idx = idx.numpy()
    flat = np.asarray(idx).reshape(-1)
    return bool(np.unique(flat).size != flat.size)


def index_update(t: Any, key: Any, value: Any) -> Tensor:
    """A new tensor: ``t`` with ``t[key]`` replaced by ``value`` (broadcast to that shape), what
    ``t[key] = value`` does to a NumPy array. A key that names an element more than once is an error
    (NumPy keeps the last write; use `index_add` to accumulate); under ``od.function`` an index tensor
    is not checked, and repeated positions receive the sum. Differentiable in ``t`` and ``value``."""
    if not isinstance(t, Tensor):
        t = tensor(t)
    p = plan(t.shape, key)
    if _repeats(p):
        raise InvalidArgumentError("index_update: the key names some elements more than once (repeated indices); "
                                   "allowed: a key naming each element at most once (od.index_add adds repeated "
                                   "ones up)")
    v = _as_values(t, value, p.shape, "index_update")
    ones = tensor(np.ones(p.shape, t.dtype), device=t.device)
    hit = F.greater(scatter_plan(t.shape, p, ones), 0.0)
    return F.where(hit, scatter_plan(t.shape, p, v), t)


def setitem_error(key: Any) -> ArgumentTypeError:
    """The error of ``t[key] = value``."""
    return ArgumentTypeError(f"Tensor does not support item assignment (t[{key!r}] = ...): tensors are immutable; "
                             f"allowed: t = od.index_update(t, key, value) (set) or t = od.index_add(t, key, value) "
                             f"(add, repeated indices accumulate), which return a new tensor and are differentiable")


INDEXING.update(getitem=getitem, setitem_error=setitem_error)
