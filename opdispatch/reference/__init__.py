"""Plain float64 NumPy implementations of every op, written for clarity, not speed.

They are the oracle of the conformance suite and are themselves checked against ONNX's node
tests. One module per op family, the same family names as `opdispatch.ops` and every backend;
each op's schema names its function (``OPS[name].reference``). Each function takes NumPy arrays
and the canonical (kernel) attributes of its op and returns float64 arrays (a tuple where the op
has several outputs).
"""

from . import compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce

FAMILIES = (conv, pool, norm, nn, linalg, elementwise, reduce, layout, compare)

__all__ = ["FAMILIES", "compare", "conv", "elementwise", "layout", "linalg", "nn", "norm", "pool", "reduce"]
