#!/usr/bin/env bash
# Create .venv (if missing) and install opdispatch, its in-tree backends and the test tools into it.
# The CuPy backend installs everywhere; without a GPU it reports itself unavailable (its tests skip).
# The OpenCL backend comes with PoCL, a CPU OpenCL driver, so opencl:0 exists on any machine.
# Idempotent: rerunning only reinstalls the editable packages (which refreshes their entry points).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[test]" -e backends/numpy -e "backends/cupy[cuda12x]" -e "backends/opencl[pocl]"
