"""opdispatch's NumPy backend: device ``numpy:0``, float32 and float64, computed in the input dtype."""

__version__ = "0.1.0"
