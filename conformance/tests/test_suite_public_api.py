"""The conformance suite uses only opdispatch's public API (an AST scan of its package).

Allowed: the ``opdispatch`` namespace (names in ``opdispatch.__all__``), ``opdispatch.ops`` (the
op table and schemas), ``opdispatch.errors``, ``opdispatch.backend``, ``opdispatch.hookspecs``,
``opdispatch.shapes`` and ``opdispatch.onnx`` (whose translation table the ONNX cases use). Not
allowed: any other core module (registry, dispatch, tensor, placement, ...), private names of the allowed ones, and underscore attributes of any object
(``Tensor._data``, ``tensor._rt``...), however they are reached.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import opdispatch

PACKAGE = Path(__file__).resolve().parents[1] / "opdispatch_conformance"
PUBLIC_MODULES = {"opdispatch", "opdispatch.ops", "opdispatch.errors", "opdispatch.backend", "opdispatch.hookspecs",
                  "opdispatch.shapes", "opdispatch.onnx"}
PUBLIC_NAMES = set(opdispatch.__all__) | {m.split(".", 1)[1] for m in PUBLIC_MODULES if "." in m}


def _core(module: str) -> bool:
    return module == "opdispatch" or module.startswith("opdispatch.")


def violations(source: str, filename: str = "<source>") -> list[str]:
    """What in ``source`` reaches past opdispatch's public API, one line each."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> the core module it names

    def where(node: ast.AST) -> str:
        return f"{filename}:{getattr(node, 'lineno', '?')}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _core(alias.name):
                    if alias.name not in PUBLIC_MODULES:
                        found.append(f"{where(node)}: import {alias.name} (not a public module)")
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "opdispatch"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _core(node.module):
            if node.module not in PUBLIC_MODULES:
                found.append(f"{where(node)}: from {node.module} import ... (not a public module)")
                continue
            for alias in node.names:
                name = alias.name
                if name == "*" or name.startswith("_") or (node.module == "opdispatch" and name not in PUBLIC_NAMES):
                    found.append(f"{where(node)}: from {node.module} import {name} (not public)")
                elif f"{node.module}.{name}" in PUBLIC_MODULES:
                    aliases[alias.asname or name] = f"{node.module}.{name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr.endswith("__")):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{where(node)}: attribute .{node.attr} (private)")
            if isinstance(node.value, ast.Name) and node.value.id in aliases:
                module = aliases[node.value.id]
                if module == "opdispatch" and node.attr not in PUBLIC_NAMES | {"__version__"}:
                    found.append(f"{where(node)}: {node.value.id}.{node.attr} (not in opdispatch.__all__)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                    and node.args[1].value.startswith("_") and not node.args[1].value.startswith("__"):
                found.append(f"{where(node)}: {node.func.id}(..., {node.args[1].value!r}) (private)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and _core(node.args[0].value) and node.args[0].value not in PUBLIC_MODULES:
                found.append(f"{where(node)}: import_module({node.args[0].value!r}) (not a public module)")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_the_suite_uses_only_the_public_core_api(path):
    assert violations(path.read_text(), str(path.relative_to(PACKAGE.parent))) == []


def test_the_scan_covers_the_whole_package():
    names = {str(p.relative_to(PACKAGE)) for p in SOURCES}
    assert {"runner.py", "gradients.py", "mutants.py", "cases/base.py", "tolerance.py"} <= names


@pytest.mark.parametrize("source, fragment", [
    ("from opdispatch import registry", "from opdispatch import registry (not public)"),
    ("from opdispatch.registry import registry", "from opdispatch.registry import ... (not a public module)"),
    ("import opdispatch.dispatch", "import opdispatch.dispatch (not a public module)"),
    ("from opdispatch.tensor import Tensor", "(not a public module)"),
    ("from opdispatch.ops import _checks", "from opdispatch.ops import _checks (not public)"),
    ("from opdispatch.ops._rules import count", "(not a public module)"),
    ("import opdispatch as od\nod.registry.registry()", "od.registry (not in opdispatch.__all__)"),
    ("import opdispatch as od\nod._api", "attribute ._api (private)"),
    ("def f(t):\n    return t._data", "attribute ._data (private)"),
    ("def f(t):\n    return getattr(t, '_rt')", "getattr(..., '_rt') (private)"),
    ("import importlib\nimportlib.import_module('opdispatch.registry')", "import_module('opdispatch.registry')"),
])
def test_the_scan_catches_internals(source, fragment):
    found = violations(source)
    assert any(fragment in v for v in found), found


def test_the_scan_accepts_the_public_api():
    source = ("import opdispatch as od\nfrom opdispatch import Device, tensor, device as scope\n"
              "from opdispatch.ops import OPS\nfrom opdispatch.backend import Kernel\nimport opdispatch.shapes\n"
              "from opdispatch import ops\nx = od.tensor([1.0]).numpy()\nod.conv2d\nod.__version__\nops.OPS\n"
              "class A:\n    def f(self):\n        return self._x\n")
    assert violations(source) == []
