"""Comparisons (bool results) and where, with NumPy broadcasting."""

from __future__ import annotations

from typing import Callable

import numpy as np


def where(cond, a, b):
    return np.where(cond, a, b)


KERNELS: dict[str, Callable] = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
                                "less_equal": np.less_equal, "greater": np.greater,
                                "greater_equal": np.greater_equal, "where": where}

_VALUES = ("float32", "float64", "int32", "int64")
DTYPES: dict[str, tuple[str, ...]] = dict.fromkeys(KERNELS, _VALUES + ("bool",))
"""The compute dtypes of each kernel (the operands'; where's a and b take no bool)."""
DTYPES["where"] = _VALUES
