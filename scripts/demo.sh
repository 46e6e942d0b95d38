#!/usr/bin/env bash
# The main job on the embedded default: installs what it needs, then runs `david-data demo`
# (a local SynthHuman-like host on loopback -> mirror -> convert -> query -> infer -> pictures).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/david-data demo "$@"
