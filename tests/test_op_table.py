"""Every op is complete in every layer, and every table of ops is derived from the family modules.

For each op of ``opdispatch.ops.OPS``: its schema sits in the family module it names, its float64
reference in the same family of ``opdispatch.reference``, it has conformance cases (grid and random)
in the same family of the suite, a gradient rule or a stated reason for having none, and on every
in-tree backend a kernel in that backend's module of the same family, or a decomposition.
"""

from __future__ import annotations

import importlib

import pytest

import opdispatch as od
from opdispatch import reference
from opdispatch.ops import FAMILIES, OPS
from opdispatch.schema import FAMILIES as FAMILY_NAMES
from opdispatch_conformance import cases as conformance_cases

BACKEND_TABLES = {
    # backend -> a function giving {op: kernel function} without needing the hardware
    "numpy": lambda: {k.op: k.fn for k in importlib.import_module("opdispatch_numpy.plugin").opdispatch_kernels()},
    "opencl": lambda: importlib.import_module("opdispatch_opencl.plugin").all_kernels(),
    "cupy": lambda: importlib.import_module("opdispatch_cupy.kernels.table").kernel_functions(),
}


def test_the_families_are_the_same_in_every_layer():
    assert tuple(m.FAMILY for m in FAMILIES) == FAMILY_NAMES
    assert tuple(m.__name__.rsplit(".", 1)[1] for m in reference.FAMILIES) == FAMILY_NAMES
    assert tuple(m.__name__.rsplit(".", 1)[1] for m in conformance_cases.FAMILIES) == FAMILY_NAMES


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_is_complete(op):
    schema = OPS[op]
    family = schema.family
    assert getattr(importlib.import_module(f"opdispatch.ops.{family}"), "FAMILY") == family
    assert schema.reference.__module__ == f"opdispatch.reference.{family}", "the reference lives in its family"
    assert any(c.op == op for grid in getattr(conformance_cases, family).GRIDS for c in grid()), "no grid cases"
    assert op in getattr(conformance_cases, family).RANDOM, "no random case generator in its family"
    assert schema.vjp is not None or schema.no_vjp, "neither a gradient rule nor a reason for none"
    assert callable(od.op_function(op))
    if schema.decomposition is not None:
        assert all(used in OPS and used != op for used in schema.decomposition.uses)


@pytest.mark.parametrize("backend", sorted(BACKEND_TABLES))
def test_every_in_tree_backend_has_a_kernel_or_a_decomposition_for_every_op(backend):
    pytest.importorskip(f"opdispatch_{backend}", reason=f"opdispatch-{backend} is not installed")
    table = BACKEND_TABLES[backend]()
    missing = sorted(op for op, s in OPS.items() if op not in table and s.decomposition is None)
    assert missing == [], f"{backend} has neither a kernel nor a decomposition for {missing}"
    for op, fn in table.items():  # each kernel lives in the backend's module of the op's family
        module = getattr(fn, "__module__", "") or ""
        if module.startswith(f"opdispatch_{backend}"):
            assert module.rsplit(".", 1)[1] in (OPS[op].family, "xp", "errors"), (op, module)


def test_public_functions_cover_the_api_ops():
    public = {"conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "matmul", "relu", "sigmoid", "tanh", "exp", "log",
              "sqrt", "neg", "add", "sub", "mul", "div", "sum", "mean", "max", "reshape", "transpose", "flatten",
              "softmax", "log_softmax", "softmax_cross_entropy"}  # API.md's first release
    for name in public:
        assert getattr(od, name) is od.op_function(name)
