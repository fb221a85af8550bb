"""Fault: a kernel provider whose kernel is for conv3d, an op opdispatch does not have."""

from opdispatch import hookimpl
from opdispatch.backend import Kernel, ProviderInfo


@hookimpl
def opdispatch_provider_info():
    return ProviderInfo(name="unknownop", version="0.1.0", priority=10)


@hookimpl
def opdispatch_provider_kernels():
    return [Kernel("conv3d", lambda x, w: x, backend="numpy")]
