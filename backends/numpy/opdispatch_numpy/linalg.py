"""matmul: NumPy's (BLAS) matmul in the input dtype."""

from __future__ import annotations

from typing import Callable

import numpy as np

KERNELS: dict[str, Callable] = {"matmul": np.matmul}
