"""The op -> kernel table, gathered from the family modules' ``KERNELS``, and the `Kernel` declarations
built from it (no CuPy import here)."""

from __future__ import annotations

from typing import Callable, Sequence

from opdispatch.backend import Kernel

from ..xp import kernel
from . import compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES: tuple[str, ...] = ("float16", "float32", "float64")
"""What every kernel computes in (float16 through float32, see `opdispatch_cupy.xp.kernel`)."""

FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS`` and, for ops
that compute in other dtypes than the floats (int, bool), those in a ``DTYPES`` dict by op."""


def kernel_functions() -> dict[str, Callable[..., object]]:
    """Every op's kernel function, unwrapped (written against ``xp``)."""
    return {op: fn for family in FAMILIES for op, fn in family.KERNELS.items()}


def kernels(dtypes: Sequence[str] = DTYPES) -> list[Kernel]:
    """One `Kernel` per op, each wrapped for device selection and float16 (sorted by op); an op whose
    family declares its own ``DTYPES`` keeps the non-float ones of them, and of ``dtypes`` the floats
    it lists."""
    own = {op: d for family in FAMILIES for op, d in getattr(family, "DTYPES", {}).items()}

    def of(op: str) -> tuple[str, ...]:
        if op not in own:
            return tuple(dtypes)
        return tuple(d for d in own[op] if d in dtypes or not d.startswith("float"))

    return [Kernel(op, kernel(fn), dtypes=of(op)) for op, fn in sorted(kernel_functions().items())]
