"""matmul: numpy.matmul semantics, cuBLAS GEMM on CuPy (batched GEMM for stacked operands)."""

from __future__ import annotations

from typing import Callable

from ..xp import Array, array_module


def matmul(a: Array, b: Array) -> Array:
    """a @ b with 1-D promotion and broadcast batch dimensions."""
    return array_module(a, b).matmul(a, b)


KERNELS: dict[str, Callable[..., Array]] = {"matmul": matmul}
