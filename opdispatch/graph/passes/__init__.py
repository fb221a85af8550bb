"""Graph passes: each a function GraphIR -> GraphIR that can be switched off and tested alone."""

from __future__ import annotations

from .constant_fold import fold_constants
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .decompose import decompose
from .layout import choose_layouts
from .fuse import fold_batch_norm, fold_bias_add, fuse, fuse_conv_clip, fuse_conv_relu
from .memory import plan_memory
from .pool_grad import mask_before_max_pool_backward
from .relu_output import read_relu_outputs

__all__ = ["fold_constants", "eliminate_common_subexpressions", "eliminate_dead_code", "decompose", "fuse",
           "fold_bias_add", "fold_batch_norm", "fuse_conv_relu", "fuse_conv_clip", "plan_memory", "read_relu_outputs",
           "mask_before_max_pool_backward", "choose_layouts"]
