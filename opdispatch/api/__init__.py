"""The public op functions (``od.conv2d`` ...), one module per op family.

Ops without a public function here (the backward ops, fused ops) are still callable: `op_function`
gives the function of any op by name, and `opdispatch.tensor.F` holds them all.
"""

from __future__ import annotations

from typing import Any, Callable

from ..ops import get_schema
from ..tensor import F
from . import compare, conv, elementwise, layout, linalg, nn, norm, pool, reduce
from .compare import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .layout import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403

_FAMILIES = (conv, pool, norm, nn, linalg, elementwise, compare, reduce, layout)
"""The family modules of the public functions (one list: `__all__` and `_REORDERED` derive from it)."""

__all__ = ["op_function"] + [name for module in _FAMILIES for name in module.__all__]

_REORDERED = {name for module in _FAMILIES for name in getattr(module, "REORDERED", ())}
"""Public functions whose arguments are not in the generic order (an attribute before an input:
``layer_norm(x, normalized_shape, weight, bias)``); `op_function` gives the generic function for them."""


def op_function(name: str) -> Callable[..., Any]:
    """The function that runs op ``name`` (forward, backward or fused): its public function when it
    has one in the generic order, else the generic one (inputs positional, attributes as keywords)."""
    get_schema(name)  # an unknown op: InvalidArgumentError listing the known ones
    public = globals().get(name)
    return public if name in __all__ and name not in _REORDERED and callable(public) else getattr(F, name)
