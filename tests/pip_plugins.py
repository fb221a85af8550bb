"""Installing the test plugin distributions of ``tests/plugins/`` with real pip, so they reach opdispatch
through ``importlib.metadata`` entry points exactly as a third party's would."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

import pytest

PLUGINS = Path(__file__).resolve().parent / "plugins"


def pip(*args: str) -> subprocess.CompletedProcess:
    """Run pip of this interpreter, quietly, without the network."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_NO_CACHE_DIR": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env, timeout=180)


def install(dists: Iterable[str], target: Path, scratch: Path) -> None:
    """Install the distributions ``dists`` (directory names under tests/plugins) into ``target``
    (``--no-deps --no-index --no-build-isolation --target``), built from a copy of their sources so
    setuptools' build/ and *.egg-info never land in the source tree."""
    sources = []
    for dist in dists:
        dst = scratch / "src" / dist
        shutil.copytree(PLUGINS / dist, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build",
                                                                          "*.egg-info"))
        sources.append(str(dst))
    proc = pip("install", "--no-deps", "--no-index", "--no-build-isolation", "--target", str(target), *sources)
    if proc.returncode != 0:
        pytest.fail(f"pip could not install the test plugins (the test extra provides setuptools and wheel):\n"
                    f"{proc.stdout}\n{proc.stderr}")


def forget_modules(packages: Iterable[str]) -> None:
    """Drop the imported modules of ``packages`` (and their submodules) from sys.modules."""
    names = set(packages)
    for mod in list(sys.modules):
        if mod.split(".")[0] in names:
            del sys.modules[mod]
    importlib.invalidate_caches()
