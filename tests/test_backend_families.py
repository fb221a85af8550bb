"""Every in-tree backend keeps its kernels in one module per op family, named after the family, each
declaring the kernels of its family's ops in ``KERNELS``; the plugin's kernel table is their union."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from opdispatch.ops import OPS
from opdispatch.schema import FAMILIES

FAMILY_OPS = {family: {op for op, schema in OPS.items() if schema.family == family} for family in FAMILIES}
"""The core's op families (from the op table), which every backend's kernel modules follow."""

# backend -> (its package, the module holding FAMILIES, the package its family modules live in)
BACKENDS = {
    "numpy": ("opdispatch_numpy", "opdispatch_numpy.plugin", "opdispatch_numpy"),
    "opencl": ("opdispatch_opencl", "opdispatch_opencl.plugin", "opdispatch_opencl"),
    "cupy": ("opdispatch_cupy", "opdispatch_cupy.kernels.table", "opdispatch_cupy.kernels"),
}


def _families(backend):
    package, table_module, _ = BACKENDS[backend]
    pytest.importorskip(package, reason=f"the {backend} backend is not installed")
    return importlib.import_module(table_module).FAMILIES


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_one_kernel_module_per_family_named_after_it(backend):
    families = _families(backend)
    home = BACKENDS[backend][2]
    names = [m.__name__ for m in families]
    assert names == [f"{home}.{f}" for f in FAMILY_OPS]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_each_family_declares_only_its_own_ops_and_no_op_is_in_two_families(backend):
    seen: dict[str, str] = {}
    for module in _families(backend):
        family = module.__name__.rsplit(".", 1)[1]
        ops = set(module.KERNELS)
        assert ops <= FAMILY_OPS[family], f"{module.__name__} declares ops of other families: {ops - FAMILY_OPS[family]}"
        assert all(callable(fn) for fn in module.KERNELS.values())
        for op in ops:
            assert op not in seen, f"{op} is declared by both {seen[op]} and {family}"
            seen[op] = family


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_plugin_kernel_table_is_exactly_the_union_of_its_families(backend):
    union = {op: fn for module in _families(backend) for op, fn in module.KERNELS.items()}
    plugin = importlib.import_module(f"{BACKENDS[backend][0]}.plugin")
    table = {k.op: k.fn for k in plugin.opdispatch_kernels()}
    assert set(table) == set(union)
    for op, fn in table.items():
        assert inspect.unwrap(fn) is union[op], op


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_no_module_outside_the_families_declares_kernels(backend):
    families = set(_families(backend))
    root = importlib.import_module(BACKENDS[backend][0])
    for info in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if module not in families:
            assert not hasattr(module, "KERNELS"), f"{info.name} declares KERNELS but is not in FAMILIES"
