"""A kernel provider for ``numpy:0`` written as a third party would: conv2d and relu kernels that count
their calls (``CALLS``) and compute with the NumPy backend's own code, so tests can see which
provider ran a call. Its conv2d declines groups > 1 and float64 (the built-in kernel runs those)."""
