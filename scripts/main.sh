#!/usr/bin/env bash
# The main job: set up, list backends and devices, then run every op on every available device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/opdispatch devices
status=0
for dev in $(.venv/bin/python -c "import opdispatch as od; print(' '.join(map(str, od.devices())))"); do
  .venv/bin/opdispatch demo --device "$dev" || status=1
done
exit $status
