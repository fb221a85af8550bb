#!/usr/bin/env bash
# Set up (with the optional benchmark peers: PyTorch CPU and ONNX Runtime), then run the CPU
# performance table of bench/perf.py, writing bench-results.json. Extra arguments go to perf.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q -e ".[bench]" || echo "bench.sh: the optional peers did not install; running without them" >&2
.venv/bin/python bench/perf.py --json bench-results.json "$@"
