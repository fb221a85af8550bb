"""``opdispatch new-backend``: the generated distribution is complete, installs with pip, loads through its
entry point and passes the conformance suite on its device (ops it has no kernel for are decomposed or
reported unsupported, never failed). The template ships in the opdispatch wheel itself.

The install runs pip with ``--target`` into a throwaway directory and the checks in subprocesses with that
directory on PYTHONPATH, so the shared test venv never sees the generated backend. One test runs the
backend guide's quick start (docs/backends/index.md) as written, read from the page, in a new virtual
environment that has only wheels built from the checkout, never the checkout itself."""

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


GUIDE = REPO / "docs" / "backends" / "index.md"
GUIDE_SECTION = "## From `pip install` to a passing conformance run"
# the distributions the guide's first line installs, and where their sources are
GUIDE_DISTS = {".": ("pyproject.toml", "README.md", "opdispatch"),
               "backends/numpy": ("pyproject.toml", "opdispatch_numpy"),
               "conformance": ("pyproject.toml", "opdispatch_conformance")}
# pip's words for an index it could not reach (then the test skips: CI has PyPI, an offline machine may not)
NO_NETWORK = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
              "Network is unreachable", "ConnectTimeout", "ReadTimeout", "ProxyError", "Max retries exceeded")


def guide_commands() -> list[str]:
    """The shell lines of the guide's "From pip install to a passing conformance run", in order, each as
    written (comments included: bash drops them)."""
    section = GUIDE.read_text().split(GUIDE_SECTION, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _outside_repo_env(venv: Path, wheels: list[Path]) -> dict[str, str]:
    """The environment of a shell with ``venv`` activated and nothing of the checkout: no PYTHONPATH, no
    repository directory on PATH, pip configured to install only from the directories ``wheels`` (they
    stand in for the index the guide's `pip install` lines read)."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "PYTEST_", "CONDA", "COV_"))}
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(REPO)]
    return {**keep, "PATH": os.pathsep.join([str(venv / "bin"), *path]), "VIRTUAL_ENV": str(venv),
            "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": " ".join(map(str, wheels)),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_NO_CACHE_DIR": "1"}


@pytest.mark.slow
def test_the_guides_commands_pass_as_written_in_a_fresh_venv_without_the_checkout(tmp_path):
    """docs/backends/index.md's quick start, line by line through bash, in a new virtual environment that
    cannot see this checkout: the wheels of opdispatch, opdispatch-numpy and opdispatch-conformance (built
    from the checkout) and their dependencies (pip download, through the machine's own pip configuration)
    are the index its `pip install` lines read. Each step exits 0, the backend's device is listed, the
    conformance run and the generated tests report no failure."""
    tomllib = pytest.importorskip("tomllib", reason="reading the generated pyproject.toml needs Python 3.11's tomllib")
    assert not tmp_path.resolve().is_relative_to(REPO)
    commands = guide_commands()
    steps = ["pip install opdispatch opdispatch-conformance", "opdispatch new-backend mybackend",
             "pip install -e './opdispatch-mybackend[test]'", "opdispatch devices",
             "opdispatch conformance --device mybackend:0", "cd opdispatch-mybackend && pytest"]
    # the guide's lines are these steps, in this order (each line may go on: arguments, a comment)
    assert len(commands) == len(steps) and all(c.startswith(s) for c, s in zip(commands, steps)), commands

    # the wheels the guide's first line installs, built from copies of the sources (no build/ in the tree)
    dist = tmp_path / "dist"
    sources = []
    for where, names in GUIDE_DISTS.items():
        src = tmp_path / "src" / (REPO / where).resolve().name
        src.mkdir(parents=True)
        for name in names:
            if (REPO / where / name).is_dir():
                shutil.copytree(REPO / where / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(REPO / where / name, src / name)
        sources.append(str(src))
    proc = pip("wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(dist), *sources)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = sorted(str(w) for w in dist.glob("*.whl"))
    assert len(wheels) == 3, wheels

    # their third-party dependencies, and those of the generated backend (its build system, its test extra)
    scratch = tmp_path / "scratch"
    new_backend("mybackend", scratch)
    generated = tomllib.loads((scratch / "pyproject.toml").read_text())
    requirements = [*generated["build-system"]["requires"], *generated["project"]["dependencies"],
                    *generated["project"]["optional-dependencies"]["test"], "wheel"]  # wheel: older setuptools
    wheelhouse = tmp_path / "wheelhouse"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--retries", "2", "--only-binary", ":all:",
                          "-d", str(wheelhouse), *wheels, *requirements],
                         capture_output=True, text=True, env=env, timeout=600)
    if got.returncode != 0:
        said = got.stdout + got.stderr
        if any(word in said for word in NO_NETWORK):
            why = next(line for line in said.splitlines() if any(word in line for word in NO_NETWORK))
            pytest.skip("pip could not reach a package index for the third-party wheels (numpy, pluggy, pytest, "
                        f"setuptools) the fresh venv needs: {why.strip()[:300]}")
        pytest.fail(said)

    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    work = tmp_path / "work"  # the author's directory: outside the checkout
    work.mkdir()
    shell = _outside_repo_env(venv, [dist, wheelhouse])
    bare = subprocess.run(["python", "-c", "import importlib.util, json, sys; print(json.dumps([sys.path, "
                           "[m for m in ('opdispatch', 'opdispatch_numpy', 'opdispatch_conformance') "
                           "if importlib.util.find_spec(m)]]))"], capture_output=True, text=True, env=shell, cwd=work)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    path, importable = json.loads(bare.stdout)
    assert importable == [] and not [p for p in path if p and Path(p).resolve().is_relative_to(REPO)], bare.stdout

    ran = {}
    for step, command in zip(steps, commands):
        proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + command], capture_output=True, text=True,
                              env=shell, cwd=work, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        ran[step] = proc.stdout

    # everything came from the venv: the installed wheels and the editable backend, never the checkout
    where = subprocess.run(["python", "-c", "import json, sys, sysconfig, opdispatch, opdispatch_numpy, "
                            "opdispatch_conformance, opdispatch_mybackend as b; print(json.dumps([[m.__file__ for m "
                            "in (opdispatch, opdispatch_numpy, opdispatch_conformance, b)], sys.path, sys.prefix, "
                            "sysconfig.get_paths()['purelib']]))"],
                           capture_output=True, text=True, env=shell, cwd=work, timeout=120)
    assert where.returncode == 0, where.stdout + where.stderr
    files, path, prefix, purelib = json.loads(where.stdout)
    site = Path(purelib)
    assert Path(prefix) == venv and site.is_relative_to(venv), where.stdout
    assert all(Path(f).is_relative_to(site) for f in files[:3]), files
    assert Path(files[3]).is_relative_to(work / "opdispatch-mybackend"), files
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(REPO)], path
    assert not [p for p in site.glob("*.pth") if str(REPO) in p.read_text()]

    devices = ran["opdispatch devices"]
    assert "mybackend:0" in devices and "loaded" in devices, devices
    conformance = ran["opdispatch conformance --device mybackend:0"]
    assert "== mybackend:0 (mybackend 0.1.0) ==" in conformance, conformance[-4000:]
    assert "passed: 0 failed case(s) across 1 device(s)" in conformance, conformance[-4000:]
    table = conformance.split("== mybackend:0 (mybackend 0.1.0) ==\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].split()[:6] == ["op", "dtype", "provider", "pass", "fail", "unsup"] and set(table[1]) == {"-"}
    rows = {(r[0], r[1]): (r[2], int(r[3]), int(r[4])) for r in (line.split() for line in table[2:])}
    assert len(rows) > 100 and all(failed == 0 for _, _, failed in rows.values()), table
    assert rows[("relu", "float32")][:1] == ("mybackend",) and rows[("relu", "float32")][1] > 0  # its own kernel
    assert rows[("conv2d", "float32")][:1] == ("decomposed",) and rows[("conv2d", "float32")][1] > 0
    assert "3 passed" in ran["cd opdispatch-mybackend && pytest"], ran["cd opdispatch-mybackend && pytest"][-4000:]
