#!/usr/bin/env bash
# The CPU performance table (bench/perf.py) from a fresh clone: set up (.venv), install the benchmark's
# peers (PyTorch CPU, ONNX Runtime, and torchvision for the ResNet-18 / MobileNetV2 rows: the bench and
# torch extras) and, where backends/onednn exists, the oneDNN kernel provider; then run perf.py.
# Arguments go to perf.py (--quick: about a minute; --rows, --peers, --rounds; --json FILE writes every
# figure, bench-results.json by default). A peer or provider that does not install is reported and the
# table is made without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q -e ".[bench,torch]" \
  || echo "bench.sh: the optional peers (torch, torchvision, onnxruntime) did not install; running without them" >&2
if [ -d backends/onednn ]; then
  .venv/bin/python -m pip install -q -e backends/onednn \
    || echo "bench.sh: backends/onednn did not install; od runs with the NumPy kernels only" >&2
fi
json=(--json bench-results.json)
for arg in "$@"; do
  case "$arg" in --json|--json=*) json=() ;; esac
done
.venv/bin/python bench/perf.py "${json[@]}" "$@"
