"""oneDNN kernels for opdispatch's ``numpy:0`` (a kernel provider, entry point group
``opdispatch.providers``): conv2d and its gradients, pooling and batch normalization through oneDNN v3.2's
C API (``libdnnl.so.3`` from the ``onednn-cpu-gomp`` wheel, bound with ctypes)."""

__version__ = "0.1.0"
