"""The op -> kernel table, gathered from the family modules' ``KERNELS``, and the `Kernel` declarations
built from it (no CuPy import here)."""

from __future__ import annotations

from typing import Callable, Sequence

from opdispatch.backend import Kernel

from ..xp import kernel
from . import conv, elementwise, layout, linalg, nn, norm, pool, reduce

DTYPES: tuple[str, ...] = ("float16", "float32", "float64")
"""What every kernel computes in (float16 through float32, see `opdispatch_cupy.xp.kernel`)."""

FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout)
"""The kernel modules, one per op family; each declares its ops' kernels in ``KERNELS``."""


def kernel_functions() -> dict[str, Callable[..., object]]:
    """Every op's kernel function, unwrapped (written against ``xp``)."""
    return {op: fn for family in FAMILIES for op, fn in family.KERNELS.items()}


def kernels(dtypes: Sequence[str] = DTYPES) -> list[Kernel]:
    """One `Kernel` per op, each wrapped for device selection and float16 (sorted by op)."""
    return [Kernel(op, kernel(fn), dtypes=tuple(dtypes)) for op, fn in sorted(kernel_functions().items())]
