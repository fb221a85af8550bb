#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml, docs/) into site/ with warnings as errors: the docs extra
# (mkdocs, mkdocstrings) is installed into .venv first (set up by scripts/setup.sh when missing).
# `bash scripts/docs.sh serve` serves it at http://127.0.0.1:8000 instead, rebuilding on changes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python -m pip install -q -e ".[docs]"
if [ "${1:-}" = serve ]; then
  exec .venv/bin/mkdocs serve
fi
.venv/bin/mkdocs build --strict
