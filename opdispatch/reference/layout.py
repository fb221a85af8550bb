"""Reference layout family: reshape, transpose, flatten, broadcast_to, squeeze, unsqueeze, pad, slice, concat,
split, gather, scatter_add.

Float inputs are computed on in float64; int and bool inputs keep their dtype (these ops only move
values, and scatter_add's integer sums are exact in the input's dtype, wrapping as NumPy's do)."""

from __future__ import annotations

import builtins

import numpy as np


def _f64(a):
    """A float input in float64; an int or bool one as it is."""
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def reshape(x, *, shape):
    """The same elements in row-major order under ``shape`` (no -1 left: inference resolved it)."""
    return np.reshape(_f64(x), shape)


def transpose(x, *, axes):
    """Permute the axes."""
    return np.transpose(_f64(x), axes)


def flatten(x, *, start_axis):
    """Merge every axis from ``start_axis`` on into one."""
    x = _f64(x)
    return x.reshape(x.shape[:start_axis] + (int(np.prod(x.shape[start_axis:])),))


def broadcast_to(x, *, shape):
    """x broadcast to ``shape`` (a float64 copy)."""
    return np.array(np.broadcast_to(_f64(x), shape))


def pad(x, *, pads, mode, value):
    """x padded by ``pads`` ((before, after) for every axis): with ``value`` ("constant"), the mirror
    image without the edge ("reflect") or copies of the edge ("edge"), as numpy.pad."""
    x = _f64(x)
    if not any(a or b for a, b in pads):  # nothing to pad (numpy.pad refuses a 0-d array)
        return x
    if mode == "constant":
        return np.pad(x, pads, mode="constant", constant_values=x.dtype.type(value))
    return np.pad(x, pads, mode=mode)


def slice(x, *, starts, ends, axes, steps):  # noqa: A001 - op name
    """Python's ``x[start:end:step]`` on each axis (canonical: every axis, an end of None runs past 0)."""
    x = _f64(x)
    index = [builtins.slice(None)] * x.ndim
    for a, b, e, s in zip(axes, starts, ends, steps):
        index[a] = builtins.slice(b, e, s)
    return np.array(x[tuple(index)])


def concat(*xs, axis):
    """The inputs joined along ``axis``."""
    return np.concatenate([_f64(x) for x in xs], axis=axis)


def squeeze(x, *, axis):
    """x without the (size-1) axes ``axis``."""
    return np.squeeze(_f64(x), axis=tuple(axis))


def unsqueeze(x, *, axis):
    """x with a size-1 axis at each of ``axis`` (axes of the result)."""
    return np.expand_dims(_f64(x), tuple(axis))


def split(x, *, sections, axis):
    """x cut along ``axis`` into parts of the sizes ``sections`` (float64 copies); one part is returned
    as an array, as every single-output op returns."""
    bounds = np.cumsum(sections)[:-1]
    parts = tuple(np.array(p) for p in np.split(_f64(x), bounds, axis=axis))
    return parts if len(parts) > 1 else parts[0]


def gather(x, indices, *, axis):
    """``numpy.take(x, indices, axis)``: out[i..., j..., k...] = x[i..., indices[j...], k...], a
    negative index counting from the end of the axis (the schema checked every index is in range)."""
    x = _f64(x)
    idx = np.asarray(indices).astype(np.int64)
    n = x.shape[axis]
    idx = np.where(idx < 0, idx + n, idx)
    outer, inner = x.shape[:axis], x.shape[axis + 1:]
    out = np.empty(outer + idx.shape + inner, x.dtype)
    for pos in np.ndindex(*idx.shape):
        out[(builtins.slice(None),) * axis + pos] = x[(builtins.slice(None),) * axis + (int(idx[pos]),)]
    return out


def scatter_add(updates, indices, *, axis, size):
    """The adjoint of gather: zeros with axis ``axis`` of length ``size``, and each slice
    ``updates[i..., j..., k...]`` added at position ``indices[j...]`` of that axis (repeated indices
    accumulate, in index order)."""
    u = _f64(updates)
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    outer, inner = u.shape[:axis], u.shape[axis + idx.ndim:]
    out = np.zeros(outer + (size,) + inner, u.dtype)
    for pos in np.ndindex(*idx.shape):
        out[(builtins.slice(None),) * axis + (int(idx[pos]),)] += u[(builtins.slice(None),) * axis + pos]
    return out
