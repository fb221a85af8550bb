#!/usr/bin/env bash
# Fleet conformance on a local two-node Ray cluster (both nodes on 127.0.0.1): set up .venv (with the
# ray extra), give node 1 alone the test backend opdispatch-fake (fake:0, a device only that node has),
# run `opdispatch conformance --ray ADDRESS` over every device of both nodes and write one merged
# report, fleet-report.json and fleet-report.md (columns host/<node id>:device, with each node's
# facts). Extra arguments go to `opdispatch conformance` (default --all; e.g. --ops conv2d,relu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r tests/plugins/opdispatch-fake "$tmp/src"   # built from a copy: no build/ or egg-info in the tree
.venv/bin/python -m pip install -q --no-deps --no-index --no-build-isolation --target "$tmp/node1" "$tmp/src"
[ $# -gt 0 ] || set -- --all
.venv/bin/python -m opdispatch_conformance.fleet --local-nodes 2 --node-path "1=$tmp/node1" -- \
  "$@" --report fleet-report.json --markdown fleet-report.md
