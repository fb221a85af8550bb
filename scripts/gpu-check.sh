#!/usr/bin/env bash
# GPU check of the CuPy backend, for a person on a machine with an NVIDIA GPU (under 5 minutes).
#
#   bash scripts/gpu-check.sh [--torch] [--venv DIR]
#
# 1. creates (or reuses) a virtualenv (default .venv) and installs opdispatch with its test extras,
#    the NumPy backend and the CuPy backend with prebuilt CuPy wheels plus the CUDA toolkit wheels
#    (NVRTC, cuBLAS: backends/cupy[cuda12x-ctk]); with --torch also PyTorch, the benchmark's peer
# 2. prints `opdispatch devices` (cupy:0 must be listed, else the backend's reason is shown)
# 3. runs `opdispatch conformance --device cupy:0` (every op, forward and gradient, float16/32/64),
#    writing gpu-conformance.json and gpu-conformance.md
# 4. runs the GPU tests of backends/cupy/tests/test_cupy_backend.py (placement, gradients, multi-GPU when present)
# 5. runs bench/cupy_vs_torch.py (vs PyTorch CUDA when installed, else vs the NumPy backend),
#    writing gpu-bench.json
# Exit status: non-zero when a step fails. Set CUPY_CACHE_DIR to keep compiled kernels elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
WITH_TORCH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) WITH_TORCH=1 ;;
    --venv) VENV="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "environment"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader || true
else
  echo "nvidia-smi not found: is the NVIDIA driver installed?"
fi

step "install into $VENV"
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q -e ".[test]" -e backends/numpy -e "backends/cupy[cuda12x-ctk]"
if [ "$WITH_TORCH" = 1 ]; then
  "$VENV/bin/python" -m pip install -q torch
fi

step "opdispatch devices"
"$VENV/bin/opdispatch" devices
if ! "$VENV/bin/python" -c "import opdispatch as od, sys; sys.exit(od.Device('cupy:0') not in od.devices())"; then
  echo "gpu-check: cupy:0 is not available; the cupy line above says why" >&2
  exit 1
fi

step "conformance on cupy:0"
"$VENV/bin/opdispatch" conformance --device cupy:0 --report gpu-conformance.json --markdown gpu-conformance.md

step "GPU tests"
"$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider backends/cupy/tests/test_cupy_backend.py -k "gpu and not conformance"

step "benchmark: CuPy backend vs peer"
"$VENV/bin/python" bench/cupy_vs_torch.py --json gpu-bench.json

step "done: gpu-conformance.json, gpu-conformance.md, gpu-bench.json written"
