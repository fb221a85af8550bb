"""Plain float64 NumPy implementations of every op, written for clarity, not speed.

They are the oracle of the conformance suite and are themselves checked against ONNX's node
tests. Each function takes NumPy arrays and the canonical (kernel) attributes of its op and
returns float64 arrays (a tuple where the op has several outputs).
"""

from .conv import conv2d, conv2d_bias_relu
from .elementwise import add, div, exp, log, mul, neg, relu, sigmoid, sqrt, sub, tanh
from .grad import (avg_pool2d_backward, batch_norm_backward, broadcast_to, conv2d_backward_input,
                   conv2d_backward_weight, max_backward, max_pool2d_backward, relu_backward,
                   softmax_cross_entropy_backward)
from .linalg import matmul
from .nn import log_softmax, softmax, softmax_cross_entropy
from .norm import batch_norm
from .pool import avg_pool2d, max_pool2d
from .reduce import max, mean, sum  # noqa: A004 - op names
from .shape_ops import flatten, reshape, transpose

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "matmul", "relu", "sigmoid", "tanh", "exp",
           "log", "sqrt", "neg", "add", "sub", "mul", "div", "sum", "mean", "max", "reshape", "transpose",
           "flatten", "softmax", "log_softmax", "softmax_cross_entropy",
           "conv2d_backward_input", "conv2d_backward_weight", "max_pool2d_backward", "avg_pool2d_backward",
           "batch_norm_backward", "relu_backward", "max_backward", "softmax_cross_entropy_backward", "broadcast_to",
           "conv2d_bias_relu"]
