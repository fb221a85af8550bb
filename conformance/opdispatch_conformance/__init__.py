"""The opdispatch conformance suite: cases (grid, seeded random, special values, inputs passed as
NumPy views, ONNX-derived), tolerances derived from each op's reduction length (references rounded
to the case's dtype), the runner, gradient checks, reports and deliberately broken backends
(``mutants``) that show what it catches.

Besides each result's values the runner checks a call's side effects: its input tensors (read back
before and after) and the host arrays given to ``od.tensor`` must be unchanged, and the outputs
of the previous calls of the op must still read back as they did (no reused or aliased output
buffers). The grids hold odd sizes past any chunk or tile (batches of 5, 7, 17, rows wider than
64, 1000+ elements); the special-value cases mix NaN, infinities, signed zeros and exp's overflow
edges into the inputs (`cases.base.In` kind "special").

Command line: ``opdispatch conformance --device D`` (or ``--all``; also ``opdispatch-conformance``);
pytest: ``pytest --pyargs opdispatch_conformance --od-device D``. Both run the same cases. The suite
uses only opdispatch's public API: ``opdispatch`` (``od.op_function``, ``od.explain``, ``od.kernels``,
``od.use_provider``, the hidden ``reference:0`` device) and the op table ``opdispatch.ops.OPS``.
"""

__version__ = "0.1.0"
