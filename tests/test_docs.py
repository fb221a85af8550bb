"""The documentation's examples run: every ```python block of each page under docs/, in order, in one
namespace per page (blocks marked ```py are fragments, not run). A page that registers plugins
(``od.register_plugin``) runs in a subprocess of its own, so the test process's registry never sees them.
The site itself is built with warnings as errors by scripts/docs.sh in CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_there_are_examples_to_run():
    assert sum(len(python_blocks(p)) for p in PAGES) >= 20


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch, capsys):
    if "od.onnx" in page.read_text():
        pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(page)
    if "od.register_plugin" in page.read_text():
        script = tmp_path / f"{page.stem}.py"
        script.write_text("\n".join(blocks))
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{page.relative_to(DOCS)}:\n{proc.stdout}\n{proc.stderr}"
        return
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{page.relative_to(DOCS)} block {i + 1}", "exec")
        exec(code, namespace)
