"""The CuPy backend's kernels on a simulated CPU device, for checking them without a GPU.

The kernels are written against the array module ``xp`` (`opdispatch_cupy.xp`); given NumPy
arrays they run the very same code with ``xp = numpy``. `SimulatedPlugin` registers them as the
backend ``cupysim`` (device ``cupysim:0``, arrays are NumPy arrays), and ::

    python -m opdispatch_cupy.simulate [conformance options]

runs ``opdispatch conformance --device cupysim:0`` on them. This proves the kernels' arithmetic,
indexing and dtype handling; it is not a GPU run (no CUDA, cuBLAS or device placement involved).
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import numpy as np
from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, DeviceInfo, Kernel

from . import __version__
from .kernels.table import DTYPES, kernels

NAME = "cupysim"


class SimulatedPlugin:
    """A plugin object: the CuPy backend's kernel table on one NumPy-backed device."""

    @hookimpl
    def opdispatch_backend_info(self) -> BackendInfo:
        return BackendInfo(name=NAME, version=__version__, description="CuPy backend kernels run on NumPy",
                           array_types=(np.ndarray, np.generic), plugin_api=1)

    @hookimpl
    def opdispatch_devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(index=0, name="CuPy kernels on NumPy (simulated, no GPU)", dtypes=DTYPES)]

    @hookimpl
    def opdispatch_kernels(self) -> list[Kernel]:
        return kernels()

    @hookimpl
    def opdispatch_from_numpy(self, array: np.ndarray, device: Any) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    @hookimpl
    def opdispatch_to_numpy(self, data: np.ndarray, device: Any) -> np.ndarray:
        return np.array(data, copy=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Register ``cupysim`` and run ``opdispatch conformance --device cupysim:0`` with ``argv``."""
    import opdispatch as od
    from opdispatch.cli import main as cli

    od.register_plugin(SimulatedPlugin(), name=NAME)
    return cli(["conformance", "--device", f"{NAME}:0", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
