"""``opdispatch new-backend NAME``: a complete backend distribution to start from.

The template ships inside the installed package (``opdispatch/templates/backend/``, package data),
so no repository checkout is needed. It generates ``opdispatch-NAME``: a pyproject with the
``opdispatch.backends`` entry point, the plugin module (the five required hooks), a device array
type, kernels for a small primitive set (everything else runs as a decomposition or is reported
unsupported), tests that run the conformance suite on ``NAME:0``, and a README.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from pathlib import Path
from typing import Any, Optional, Union

from .backend import PLUGIN_API
from .errors import InvalidArgumentError
from .plugins import ALIAS_NAMES, NAME_PATTERN, NAME_RULE, RESERVED_NAMES

TEMPLATE = "templates/backend"
"""Where the template lies inside the ``opdispatch`` package; ``PACKAGE`` in its paths is the
generated package's name, ``.tmpl`` endings are dropped and ``{{key}}`` placeholders filled."""


def _version(dist: str, fallback: str = "0.1.0") -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return fallback


def template_values(name: str) -> dict[str, str]:
    """The placeholders of the template for backend ``name``."""
    core = _version("opdispatch")
    suite = _version("opdispatch-conformance", core)
    major_minor = ".".join(suite.split(".")[:2])
    return {"name": name, "package": f"opdispatch_{name.replace('-', '_')}", "dist": f"opdispatch-{name}",
            "plugin_api": str(PLUGIN_API), "opdispatch_min": ".".join(core.split(".")[:2]),
            "conformance_pin": f"{major_minor}.*"}


def check_backend_name(name: str) -> str:
    """``name`` when a new backend may take it, else `InvalidArgumentError` saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidArgumentError(f"new-backend: argument 'name' got {name!r}; allowed: {NAME_RULE}")
    taken = {**RESERVED_NAMES, **dict.fromkeys(ALIAS_NAMES, "a device alias")}
    if name in taken:
        raise InvalidArgumentError(f"new-backend: argument 'name' got {name!r}, which belongs to {taken[name]}; "
                                   f"allowed: {NAME_RULE}, other than {sorted(taken)}")
    return name


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{{key}}`` replaced by ``values[key]``."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise RuntimeError(f"template placeholder left unfilled: {text[text.index('{{'):][:40]!r}")
    return text


def new_backend(name: str, directory: Optional[Union[str, Path]] = None) -> list[Path]:
    """Write the distribution of a new backend ``name`` into ``directory`` (default
    ``./opdispatch-NAME``; it must not exist or be empty) and return the files written."""
    check_backend_name(name)
    values = template_values(name)
    target = Path(directory if directory is not None else values["dist"])
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgumentError(f"new-backend: argument '--dir' got {str(target)!r}, which exists and is not an "
                                   f"empty directory; allowed: a new or empty directory (nothing is overwritten)")
    root = importlib.resources.files("opdispatch").joinpath(TEMPLATE)
    planned: list[tuple[Path, str]] = []

    def walk(node: Any, rel: Path) -> None:  # an importlib.resources Traversable
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            part = values["package"] if child.name == "PACKAGE" else child.name.removesuffix(".tmpl")
            if child.is_dir():
                walk(child, rel / part)
            else:
                planned.append((rel / part, render(child.read_text(encoding="utf-8"), values)))

    walk(root, Path())
    if not planned:
        raise RuntimeError(f"the backend template is missing from this opdispatch installation ({root})")
    written = []
    for rel, text in planned:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
