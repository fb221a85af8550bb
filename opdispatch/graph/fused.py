"""Running fused ops (`opdispatch.ops.fused`) on any device: the backend's fused kernel when it has
one, else the composition of its kernels for the ops the fused op replaces."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..ops import OPS
from ..ops.fused import FUSED_PARTS
from ..registry import DeviceRuntime
from ..schema import TensorMeta


def _compose(fns: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
    first, rest = fns[0], fns[1:]

    def composed(*inputs: Any, **attrs: Any) -> Any:
        out = first(*inputs, **attrs)
        for fn in rest:
            out = fn(out)
        return out

    return composed


def kernel_for(rt: DeviceRuntime, op: str) -> Optional[Callable[..., Any]]:
    """The function that runs ``op`` on ``rt``: its own kernel, a composition for a fused op, or None."""
    kernel = rt.kernels.get(op)
    if kernel is not None:
        return kernel.fn
    parts = FUSED_PARTS.get(op)
    if parts is not None and all(p in rt.kernels for p in parts):
        return _compose([rt.kernels[p].fn for p in parts])
    return None


def why_unsupported_op(rt: DeviceRuntime, op: str, metas: Sequence[Optional[TensorMeta]], attrs: dict,
                       dtype: np.dtype) -> Optional[str]:
    """None when ``rt`` can run ``op`` on these inputs (a fused op possibly as its composition), else the reason."""
    from ..dispatch import why_unsupported

    reason = why_unsupported(rt, OPS[op], metas, attrs, dtype)
    parts = FUSED_PARTS.get(op)
    if reason is None or parts is None or op in rt.kernels:
        return reason
    first, *rest = parts  # a chain: the first part takes the inputs, each later one the previous output
    reason = why_unsupported(rt, OPS[first], metas, attrs, dtype)
    out_meta = OPS[op].infer(op, metas, attrs)[0][0]
    for part in rest:
        reason = reason or why_unsupported(rt, OPS[part], [out_meta], {}, dtype)
    return reason
