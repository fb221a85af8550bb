"""The opdispatch conformance suite: cases (grid, seeded random, ONNX-derived), tolerances derived
from each op's reduction length, the runner, gradient checks, reports and deliberately broken
backends (``mutants``) that show what it catches.

Command line: ``opdispatch conformance --device D`` (or ``--all``; also ``opdispatch-conformance``);
pytest: ``pytest --pyargs opdispatch_conformance --od-device D``. Both run the same cases. The suite
uses only opdispatch's public API: ``opdispatch`` (``od.op_function``, ``od.explain``, ``od.kernels``,
``od.use_provider``, the hidden ``reference:0`` device) and the op table ``opdispatch.ops.OPS``.
"""

__version__ = "0.1.0"
