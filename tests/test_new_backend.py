"""``opdispatch new-backend``: the generated distribution is complete, installs with pip, loads through its
entry point and passes the conformance suite on its device (ops it has no kernel for are decomposed or
reported unsupported, never failed). The template ships in the opdispatch wheel itself.

The install runs pip with ``--target`` into a throwaway directory and the checks in subprocesses with that
directory on PYTHONPATH, so the shared test venv never sees the generated backend."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from opdispatch import cli
from opdispatch.errors import InvalidArgumentError
from opdispatch.scaffold import new_backend

from pip_plugins import pip

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {"pyproject.toml", "README.md", "opdispatch_demo/__init__.py", "opdispatch_demo/array.py",
            "opdispatch_demo/kernels.py", "opdispatch_demo/plugin.py", "tests/test_backend.py",
            "tests/test_conformance.py"}


def test_new_backend_writes_a_complete_distribution(tmp_path, capsys):
    target = tmp_path / "opdispatch-demo"
    assert cli.main(["new-backend", "demo", "--dir", str(target)]) == 0
    assert "opdispatch conformance --device demo:0" in capsys.readouterr().out
    files = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert files == EXPECTED
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{{" not in text and "PACKAGE" not in text, path
            if path.suffix == ".py":
                compile(text, str(path), "exec")  # valid Python once filled in
    pyproject = (target / "pyproject.toml").read_text()
    assert '[project.entry-points."opdispatch.backends"]\ndemo = "opdispatch_demo.plugin"' in pyproject
    assert "opdispatch-conformance==0.1.*" in pyproject  # the suite pinned to this release's series
    assert "plugin_api=1" in (target / "opdispatch_demo" / "plugin.py").read_text()
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():  # the generated code passes this project's own linter
        proc = subprocess.run([str(ruff), "check", "--no-cache", "--isolated", "--line-length", "120", "--select",
                               "E,W,F,B,A,C4", str(target)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name, problem", [("numpy", "belongs to opdispatch-numpy"), ("cpu", "device alias"),
                                           ("My Backend", "allowed: lowercase letters"), ("9lives", "allowed")])
def test_new_backend_refuses_names_it_may_not_take(tmp_path, name, problem):
    with pytest.raises(InvalidArgumentError, match=problem):
        new_backend(name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_new_backend_never_overwrites(tmp_path, capsys):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    assert cli.main(["new-backend", "demo", "--dir", str(target)]) == 2
    assert "exists and is not an empty directory" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def _run(args: list[str], site: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.mark.slow
def test_generated_backend_installs_and_passes_conformance(tmp_path):
    """The guide's steps: generate, pip install, then `opdispatch conformance --device demo:0` exits 0 with
    the backend's own kernels, decompositions and unsupported ops in the report; the generated tests pass."""
    src = tmp_path / "opdispatch-demo"
    new_backend("demo", src)
    site = tmp_path / "site"
    proc = pip("install", "--no-deps", "--no-index", "--no-build-isolation", "--target", str(site), str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(site.glob("opdispatch_demo-*.dist-info"))  # the entry point's metadata
    opdispatch = [sys.executable, "-m", "opdispatch.cli"]

    listed = _run(opdispatch + ["devices"], site, tmp_path)
    assert listed.returncode == 0 and "demo:0" in listed.stdout, listed.stdout + listed.stderr

    report = tmp_path / "report.json"
    run = _run(opdispatch + ["conformance", "--device", "demo:0", "--report", str(report)], site, tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed: 0 failed case(s)" in run.stdout
    rows = {(r["op"], r["dtype"]): r for r in json.loads(report.read_text())["devices"]["demo:0"]["summary"]}
    assert rows[("relu", "float32")]["provider"] == "demo" and rows[("relu", "float32")]["passed"] > 0
    assert rows[("conv2d", "float32")]["provider"] == "decomposed" and rows[("conv2d", "float32")]["passed"] > 0
    assert rows[("conv2d.grad", "float32")]["passed"] > 0
    assert rows[("softmax_cross_entropy", "float32")]["passed"] > 0  # int64 labels on a float32 device
    assert rows[("argmax", "float32")]["verdict"] == "unsupported"  # no kernel, no decomposition
    assert rows[("pad", "float32")]["unsupported"] > 0 and rows[("pad", "float32")]["failed"] == 0  # supports()
    assert all(r["failed"] == 0 for r in rows.values())

    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(src / "tests")], site, src)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "3 passed" in tests.stdout


@pytest.mark.slow
def test_template_ships_in_the_opdispatch_wheel(tmp_path):
    """`opdispatch new-backend` needs no checkout: the template is package data of the built wheel, and
    the command run from that wheel, installed, writes the distribution."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copy(REPO / "README.md", src)
    shutil.copytree(REPO / "opdispatch", src / "opdispatch", ignore=shutil.ignore_patterns("__pycache__"))
    proc = pip("wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("opdispatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    template = REPO / "opdispatch" / "templates" / "backend"
    expected = {"opdispatch/" + str(p.relative_to(REPO / "opdispatch")) for p in template.rglob("*.tmpl")}
    assert len(expected) == len(EXPECTED) and expected <= names, sorted(expected - names)

    site = tmp_path / "site"
    proc = pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = _run([sys.executable, "-c", "import opdispatch; print(opdispatch.__file__)"], site, tmp_path)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr  # the wheel's, not the checkout
    made = _run([sys.executable, "-m", "opdispatch.cli", "new-backend", "demo", "--dir", "out"], site, tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()} == EXPECTED
