#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --azurite --browser
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check david_data flows tests benchmarks
echo "== mypy"; mypy
echo "== pytest"; exec python -m pytest "$@"
