"""opdispatch/ has no import cycles among its modules.

The same count as ``../shared/tools/import_cycles.py``, reimplemented here so CI needs nothing
outside the repository: every import (module level and inside functions) counts, except those
under ``if TYPE_CHECKING:``; a cycle is a strongly connected component of more than one module.
The layering itself is a contract of import-linter (``lint-imports``, ``[tool.importlinter]`` in
pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "opdispatch"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package directory ``root``."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (the nearest enclosing module of each name)."""
    pkg = next(iter(mods)).split(".")[0]

    def target(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = {id(sub) for node in ast.walk(tree)
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for sub in ast.walk(node)}
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    t = target(alias.name)
                    if t and t.split(".")[0] == pkg:
                        edges[mod].add(t)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    if node.level > 1:
                        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.split(".")[0] != pkg:
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    t = target(full) if full in mods else target(base)
                    if t:
                        edges[mod].add(t)
        edges[mod].discard(mod)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(edges[start])))]
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_the_cycle_check_sees_the_imports_of_the_package():
    mods = module_files(ROOT)
    edges = import_edges(mods)
    assert len(mods) > 50 and "opdispatch.graph.passes.fuse" in mods
    assert "opdispatch.registry" in edges["opdispatch.dispatch"]
    assert "opdispatch.errors" in edges["opdispatch.device"]


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_opdispatch_has_no_import_cycles():
    found = cycles(import_edges(module_files(ROOT)))
    assert not found, "import cycles: " + "; ".join(" ".join(c) for c in found)
