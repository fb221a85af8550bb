"""opdispatch backend for NVIDIA GPUs through CuPy (cuBLAS matmul, im2col + GEMM convolution)."""

__version__ = "0.1.0"
