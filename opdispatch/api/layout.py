"""Public functions of the layout family."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from .. import indexing
from ..ops import OPS
from ..tensor import Tensor, run
from ._types import ArrayLike

__all__ = ["reshape", "transpose", "flatten", "squeeze", "unsqueeze", "pad", "slice", "concat", "split", "gather",
           "scatter_add", "index_add", "index_update"]


def reshape(x: ArrayLike, shape: Union[int, Sequence[int]]) -> Tensor:
    """The same elements in row-major order under ``shape``; one entry may be -1 (inferred)."""
    return run(OPS["reshape"], (x,), {"shape": shape})


def transpose(x: ArrayLike, axes: Optional[Sequence[int]] = None) -> Tensor:
    """Permute the axes (None reverses them)."""
    return run(OPS["transpose"], (x,), {"axes": axes})


def flatten(x: ArrayLike, start_axis: int = 1) -> Tensor:
    """Merge every axis from ``start_axis`` on into one."""
    return run(OPS["flatten"], (x,), {"start_axis": start_axis})


def squeeze(x: ArrayLike, axis: Union[None, int, Sequence[int]] = None) -> Tensor:
    """x without its size-1 axes: every one (``axis=None``) or those named (an int or a sequence; an
    axis whose size is not 1 is an error naming it)."""
    return run(OPS["squeeze"], (x,), {"axis": axis})


def unsqueeze(x: ArrayLike, axis: Union[int, Sequence[int]]) -> Tensor:
    """x with a size-1 axis inserted at each of ``axis`` (an int or a sequence), axes of the result:
    a negative axis counts from the end of the result (numpy.expand_dims, ONNX Unsqueeze)."""
    return run(OPS["unsqueeze"], (x,), {"axis": axis})


def pad(x: ArrayLike, pads: Sequence[tuple[int, int]], mode: str = "constant", value: float = 0.0) -> Tensor:
    """x padded by ``pads``, ((before, after), ...) for the last len(pads) axes: with ``value``
    ("constant"), mirrored without repeating the edge ("reflect", each pad smaller than its axis)
    or with copies of the edge ("edge"), as numpy.pad."""
    return run(OPS["pad"], (x,), {"pads": pads, "mode": mode, "value": value})


def slice(x: ArrayLike, starts: Sequence[int], ends: Sequence[Optional[int]],  # noqa: A001 - op name
          axes: Optional[Sequence[int]] = None, steps: Optional[Sequence[int]] = None) -> Tensor:
    """``x[start:end:step]`` along each of ``axes`` (default: the first len(starts) axes), with
    Python's meaning of negative and out-of-range indices (ONNX Slice); an end of None runs to the
    end in the step's direction. ``steps`` default to 1 and may be negative."""
    return run(OPS["slice"], (x,), {"starts": starts, "ends": ends, "axes": axes, "steps": steps})


def concat(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """The tensors joined along ``axis`` (their shapes equal elsewhere)."""
    return run(OPS["concat"], OPS["concat"].flatten_args((tensors,)), {"axis": axis})


def split(x: ArrayLike, sections: Union[int, Sequence[int]], axis: int = 0) -> tuple[Tensor, ...]:
    """x cut along ``axis``: into ``sections`` equal parts (an int that divides the axis) or into parts
    of the given sizes (a list summing to the axis). Returns a tuple of tensors, one per part."""
    out = run(OPS["split"], (x,), {"sections": sections, "axis": axis})
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def gather(x: ArrayLike, indices: ArrayLike, axis: int = 0) -> Tensor:
    """``numpy.take(x, indices, axis)``: the slices of ``x`` along ``axis`` at the int32/int64 ``indices``
    (negative ones count from the end; one out of range is a `TensorIndexError`). The result has the
    indices' shape in place of that axis; its gradient is a `scatter_add`."""
    return run(OPS["gather"], (x, indices), {"axis": axis})


def scatter_add(updates: ArrayLike, indices: ArrayLike, axis: int = 0, size: int = 0) -> Tensor:
    """The adjoint of `gather`: zeros whose ``axis`` has length ``size``, and each slice of ``updates``
    (which has the indices' shape at ``axis``) added at its index; repeated indices accumulate."""
    return run(OPS["scatter_add"], (updates, indices), {"axis": axis, "size": size})


def index_add(t: ArrayLike, key: Any, value: ArrayLike) -> Tensor:
    """A new tensor: ``t`` with ``value`` (broadcast to ``t[key]``'s shape) added at ``t[key]``, any key
    ``t[...]`` takes; repeated indices accumulate (``numpy.add.at``). Differentiable."""
    return indexing.index_add(t, key, value)


def index_update(t: ArrayLike, key: Any, value: ArrayLike) -> Tensor:
    """A new tensor: ``t`` with ``t[key]`` replaced by ``value`` (broadcast), what ``t[key] = value`` does
    in NumPy (tensors are immutable). A key naming an element twice is an error. Differentiable."""
    return indexing.index_update(t, key, value)
