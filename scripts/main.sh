#!/usr/bin/env bash
# The main job: set up, list backends and devices, then run the conformance suite over every
# available device (numpy:0 at least), printing per-op tables and the ops x devices matrix and
# writing conformance-report.json / conformance-report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/opdispatch devices
.venv/bin/opdispatch conformance --all --report conformance-report.json --markdown conformance-report.md "$@"
