"""The plugin module named by this distribution's ``opdispatch.providers`` entry point: oneDNN kernels
for ``numpy:0`` at priority 100 (above the NumPy backend's own). When ``libdnnl.so.3`` cannot be
loaded the provider reports itself unavailable with the reason, and the NumPy kernels run."""

from __future__ import annotations

from opdispatch import hookimpl
from opdispatch.backend import CHANNELS_LAST, BackendUnavailable, Kernel, ProviderInfo

from . import __version__, conv, elementwise, linalg, nn, norm, pool
from . import library as L

PRIORITY = 100
FAMILIES = (conv, pool, norm, nn, linalg, elementwise)
"""The kernel modules; each declares ``KERNELS``: op -> (kernel, supports), float32 only, and may name in
``CHANNELS_LAST_OPS`` the kernels that write channels-last results when a graph asks."""


@hookimpl
def opdispatch_provider_info() -> ProviderInfo:
    return ProviderInfo(name="onednn", version=__version__, priority=PRIORITY, plugin_api=1,
                        description="oneDNN v3.2 (onednn-cpu-gomp) kernels for numpy:0")


@hookimpl
def opdispatch_provider_kernels() -> list[Kernel]:
    try:
        lib = L.load()
    except OSError as exc:
        raise BackendUnavailable(f"oneDNN cannot be loaded: {exc}") from exc
    del lib
    return [Kernel(op, fn, dtypes=("float32",), backend="numpy", supports=supports,
                   layouts=(CHANNELS_LAST,) if op in getattr(family, "CHANNELS_LAST_OPS", ()) else ())
            for family in FAMILIES for op, (fn, supports) in sorted(family.KERNELS.items())]
