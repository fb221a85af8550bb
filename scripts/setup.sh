#!/usr/bin/env bash
# Create .venv (if missing) and install opdispatch, its in-tree backends, the conformance suite
# (conformance/, distribution opdispatch-conformance) and the test tools into it.
# The ray extra (Ray, for `opdispatch conformance --ray` and opdispatch.distributed) lets CI run their
# local-cluster tests (about a minute); the core never needs it. The CuPy backend installs everywhere; without a GPU it reports itself unavailable (its tests skip).
# The OpenCL backend comes with PoCL, a CPU OpenCL driver, so opencl:0 exists on any machine. Where
# that PoCL's LLVM does not know the CPU (it then fails on every kernel: "unknown target CPU
# 'generic'", seen on AMD Zen 5), Debian's PoCL (package pocl-opencl-icd) is installed when this
# runs as root with apt-get; otherwise the OpenCL backend reports itself unavailable with the reason.
# Idempotent: rerunning only reinstalls the editable packages (which refreshes their entry points).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[test,ray]" -e backends/numpy -e "conformance[onnx]" -e "backends/cupy[cuda12x]" \
  -e "backends/opencl[pocl]" -e backends/onednn

opencl_compiles() {
  .venv/bin/python -c "import sys, opdispatch_opencl.runtime as r; sys.exit(0 if r.probe() else 1)" 2>/dev/null
}
if ! opencl_compiles; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: the pip PoCL cannot compile kernels on this CPU; installing Debian's pocl-opencl-icd" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q pocl-opencl-icd >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q pocl-opencl-icd >/dev/null 2>&1; } \
      || echo "setup: apt-get install pocl-opencl-icd failed; opencl:0 will be unavailable" >&2
  else
    echo "setup: no OpenCL device compiles kernels here; 'opdispatch devices' says why (opencl tests skip)" >&2
  fi
fi
