"""opdispatch's OpenCL backend: every OpenCL device as ``opencl:N``, kernels in OpenCL C.

Importing this package never touches OpenCL: pyopencl is imported lazily by the device probe
(``opdispatch_devices``) and by the kernels, so a machine without an OpenCL platform gets an
"unavailable" backend with the reason instead of an import error.
"""

__version__ = "0.1.0"
