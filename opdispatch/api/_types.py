"""Type aliases of the public op functions' arguments."""

from __future__ import annotations

from typing import Any, Sequence, Union

Pair = Union[int, tuple[int, int]]
Padding = Union[int, str, tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]
Axis = Union[None, int, Sequence[int]]
ArrayLike = Any  # a Tensor, a NumPy array, a Python number or a nested sequence of numbers
