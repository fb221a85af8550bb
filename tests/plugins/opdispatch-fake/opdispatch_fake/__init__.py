"""A tiny third-party opdispatch backend used by the test suite (not a real accelerator).

Its device ``fake:0`` computes in float32 only and keeps data in `FakeArray`, its own array
type, so tests can prove that data really lives on the device and crosses to and from the
host only through the plugin's transfer hooks.
"""

from .array import FakeArray

__version__ = "0.1.0"
__all__ = ["FakeArray", "__version__"]
