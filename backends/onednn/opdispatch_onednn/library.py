"""oneDNN v3.2's C API through ctypes: finding and loading ``libdnnl.so.3``, the functions and
constants the kernels use, the CPU engine and one stream per thread.

ctypes, not a compiled extension: the provider then installs from PyPI with no compiler, and a call
costs a few microseconds of binding overhead (``bench/onednn_overhead.py`` measures it against the
oneDNN work of the same call), which is noise for the convolutions, pools and normalizations this
provider serves (tens of microseconds to milliseconds each). ctypes releases the GIL while oneDNN
runs, so Python threads run primitives concurrently.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import threading
from ctypes import POINTER, byref, c_char_p, c_float, c_int, c_int64, c_size_t, c_uint, c_void_p
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from opdispatch.errors import KernelError

LIBRARY_ENV = "OPDISPATCH_ONEDNN_LIBRARY"
"""An explicit path of ``libdnnl.so.3`` to load (by default: the one of the onednn-cpu-gomp wheel)."""
DISTRIBUTION = "onednn-cpu-gomp"
SONAME = "libdnnl.so.3"
WANTED_MAJOR = 3
WANTED_MINOR = 2

MAX_NDIMS = 12
Dims = c_int64 * MAX_NDIMS

# dnnl_data_type_t
F32 = 3
# dnnl_format_tag_t
FORMAT_ANY = 1
# dnnl_prop_kind_t
FORWARD_TRAINING = 64
FORWARD_INFERENCE = 96
BACKWARD = 128
BACKWARD_DATA = 160
BACKWARD_WEIGHTS = 192
# dnnl_alg_kind_t
CONVOLUTION_DIRECT = 0x1
DECONVOLUTION_DIRECT = 0xA
ELTWISE_RELU = 0x20
ELTWISE_HARDSIGMOID = 0x28
ELTWISE_LOGISTIC = 0x29
ELTWISE_GELU_TANH = 0x2B
ELTWISE_GELU_ERF = 0x31
ELTWISE_HARDSWISH = 0x34
ELTWISE_CLIP_V2 = 0x2F
POOLING_MAX = 0x1FF
POOLING_AVG_INCLUDE_PADDING = 0x2FF
POOLING_AVG_EXCLUDE_PADDING = 0x3FF
SOFTMAX_ACCURATE = 0x30000
SOFTMAX_LOG = 0x30001
# dnnl_normalization_flags_t
USE_GLOBAL_STATS = 0x1
USE_SCALE = 0x2
USE_SHIFT = 0x4
# dnnl_scratchpad_mode_t
SCRATCHPAD_USER = 1
# dnnl_query_t
QUERY_IMPL_INFO_STR = 8
QUERY_EXEC_ARG_MD = 255
# execution arguments (DNNL_ARG_*)
ARG_SRC = 1
ARG_DST = 17
ARG_WEIGHTS = 33
ARG_BIAS = 41
ARG_MEAN = 49
ARG_VARIANCE = 50
ARG_SCALE = 51
ARG_SHIFT = 52
ARG_WORKSPACE = 64
ARG_SCRATCHPAD = 80
ARG_DIFF_SRC = 129
ARG_DIFF_DST = 145
ARG_DIFF_WEIGHTS = 161
ARG_DIFF_BIAS = 169
ARG_DIFF_SCALE = 255
ARG_DIFF_SHIFT = 256

STATUS_NAMES = {1: "out_of_memory", 2: "invalid_arguments", 3: "unimplemented", 5: "runtime_error",
                6: "not_required", 7: "invalid_graph", 8: "invalid_graph_op", 9: "invalid_shape",
                10: "invalid_data_type"}


class ExecArg(ctypes.Structure):
    """dnnl_exec_arg_t: an execution argument's index and memory object."""

    _fields_ = [("arg", c_int), ("memory", c_void_p)]


class Version(ctypes.Structure):
    """dnnl_version_t."""

    _fields_ = [("major", c_int), ("minor", c_int), ("patch", c_int), ("hash", c_char_p), ("cpu_runtime", c_uint),
                ("gpu_runtime", c_uint)]


class OneDNNError(KernelError):
    """A oneDNN call returned an error status."""


class Unimplemented(OneDNNError):
    """oneDNN has no implementation for the primitive asked for (status ``unimplemented``)."""


_P = c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "dnnl_engine_create": (c_int, [POINTER(_P), c_int, c_size_t]),
    "dnnl_stream_create": (c_int, [POINTER(_P), _P, c_uint]),
    "dnnl_stream_wait": (c_int, [_P]),
    "dnnl_memory_desc_create_with_strides": (c_int, [POINTER(_P), c_int, Dims, c_int, Dims]),
    "dnnl_memory_desc_create_with_tag": (c_int, [POINTER(_P), c_int, Dims, c_int, c_int]),
    "dnnl_memory_desc_destroy": (c_int, [_P]),
    "dnnl_memory_desc_clone": (c_int, [POINTER(_P), _P]),
    "dnnl_memory_desc_equal": (c_int, [_P, _P]),
    "dnnl_memory_desc_get_size": (c_size_t, [_P]),
    "dnnl_memory_create": (c_int, [POINTER(_P), _P, _P, _P]),
    "dnnl_memory_set_data_handle": (c_int, [_P, _P]),
    "dnnl_memory_destroy": (c_int, [_P]),
    "dnnl_primitive_attr_create": (c_int, [POINTER(_P)]),
    "dnnl_primitive_attr_destroy": (c_int, [_P]),
    "dnnl_primitive_attr_set_scratchpad_mode": (c_int, [_P, c_int]),
    "dnnl_primitive_attr_set_post_ops": (c_int, [_P, _P]),
    "dnnl_post_ops_create": (c_int, [POINTER(_P)]),
    "dnnl_post_ops_destroy": (c_int, [_P]),
    "dnnl_post_ops_append_eltwise": (c_int, [_P, c_int, c_float, c_float]),
    "dnnl_primitive_desc_query": (c_int, [_P, c_int, c_int, _P]),
    "dnnl_primitive_desc_query_md": (_P, [_P, c_int, c_int]),
    "dnnl_primitive_desc_destroy": (c_int, [_P]),
    "dnnl_primitive_create": (c_int, [POINTER(_P), _P]),
    "dnnl_primitive_destroy": (c_int, [_P]),
    "dnnl_primitive_execute": (c_int, [_P, _P, c_int, POINTER(ExecArg)]),
    "dnnl_reorder_primitive_desc_create": (c_int, [POINTER(_P), _P, _P, _P, _P, _P]),
    "dnnl_convolution_forward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, c_int, _P, _P, _P, _P, Dims, Dims, Dims, Dims, _P]),
    "dnnl_deconvolution_forward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, c_int, _P, _P, _P, _P, Dims, Dims, Dims, Dims, _P]),
    "dnnl_convolution_backward_data_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, _P, _P, _P, Dims, Dims, Dims, Dims, _P, _P]),
    "dnnl_convolution_backward_weights_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, _P, _P, _P, _P, Dims, Dims, Dims, Dims, _P, _P]),
    "dnnl_pooling_forward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, c_int, _P, _P, Dims, Dims, Dims, Dims, Dims, _P]),
    "dnnl_pooling_backward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, _P, _P, Dims, Dims, Dims, Dims, Dims, _P, _P]),
    "dnnl_batch_normalization_forward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, _P, _P, c_float, c_uint, _P]),
    "dnnl_batch_normalization_backward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, _P, _P, _P, c_float, c_uint, _P, _P]),
    "dnnl_matmul_primitive_desc_create": (c_int, [POINTER(_P), _P, _P, _P, _P, _P, _P]),
    "dnnl_eltwise_forward_primitive_desc_create": (
        c_int, [POINTER(_P), _P, c_int, c_int, _P, _P, c_float, c_float, _P]),
    "dnnl_softmax_forward_primitive_desc_create": (c_int, [POINTER(_P), _P, c_int, c_int, _P, _P, c_int, _P]),
    "dnnl_version": (POINTER(Version), []),
}


def _candidates() -> list[Path]:
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return [Path(explicit)]
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(str(f.locate())).resolve() for f in files if f.name == SONAME]


class Library:
    """The loaded ``libdnnl.so.3``: its functions as attributes (``lib.dnnl_memory_create``), its
    version, the CPU engine, and `stream()` (one per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dll = ctypes.CDLL(str(path))  # CDLL: the GIL is released during every call
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.dll, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        v = self.dll.dnnl_version().contents
        self.version = (v.major, v.minor, v.patch)
        if (v.major, v.minor) != (WANTED_MAJOR, WANTED_MINOR):
            raise OSError(f"{path} is oneDNN {v.major}.{v.minor}.{v.patch}; this provider is built for "
                          f"{WANTED_MAJOR}.{WANTED_MINOR}")
        self.engine = c_void_p()
        check(self.dll.dnnl_engine_create(byref(self.engine), 1, 0), "dnnl_engine_create")  # dnnl_cpu
        self._local = threading.local()

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any:  # the dnnl_* functions set in __init__
            ...

    def stream(self) -> c_void_p:
        """This thread's stream on the CPU engine (a stream is not shared between threads)."""
        s = getattr(self._local, "stream", None)
        if s is None:
            s = c_void_p()
            check(self.dll.dnnl_stream_create(byref(s), self.engine, 1), "dnnl_stream_create")  # in order
            self._local.stream = s
        return s


def check(status: int, what: str) -> None:
    """Raise `Unimplemented` / `OneDNNError` naming the call ``what`` when ``status`` is not success."""
    if status == 0:
        return
    name = STATUS_NAMES.get(status, f"status {status}")
    cls = Unimplemented if status == 3 else OneDNNError
    raise cls(f"oneDNN: {what} failed: {name}")


_LOCK = threading.Lock()
_LOADED: Optional[Library] = None
_REASON: Optional[str] = None


def load() -> Library:
    """The library, loaded once; `OSError` with the reason when it cannot be loaded here."""
    global _LOADED, _REASON
    with _LOCK:
        if _LOADED is not None:
            return _LOADED
        if _REASON is not None:
            raise OSError(_REASON)
        paths = _candidates()
        if not paths:
            _REASON = (f"{SONAME} not found: the {DISTRIBUTION} distribution is not installed "
                       f"(pip install {DISTRIBUTION}==2023.2.0) and {LIBRARY_ENV} is not set")
            raise OSError(_REASON)
        try:
            _LOADED = Library(paths[0])
        except (OSError, AttributeError, OneDNNError) as exc:
            _REASON = f"cannot load {paths[0]}: {exc}"
            raise OSError(_REASON) from exc
        return _LOADED
