#!/usr/bin/env bash
# Set up, then run the test suite (extra arguments go to pytest). The tests marked slow are left out
# (addopts in pyproject.toml); a -m given here replaces that default: `-m slow` runs only those, `-m ''` all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q -rs "$@"
