#!/usr/bin/env bash
# Installs what david-data needs, idempotently: a virtual environment in .venv with the
# locked Python packages (david-data with every extra, CPU PyTorch included, and the test
# tools), (with --azurite) the Azurite blob emulator from npm in .tools/, and (with
# --browser) Debian's headless-capable Chromium, which the browse tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (pinned by requirements.lock)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[all,test]"
  rm -f .venv/.installed-* && touch "$stamp"
fi

for arg in "$@"; do
  case "$arg" in
    --azurite)
      if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
        echo "setup: installing the Azurite blob emulator from npm into .tools/"
        mkdir -p .tools
        npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@3.37.0 >/dev/null
      fi
      ;;
    --browser)
      if ! command -v chromium >/dev/null; then
        echo "setup: installing Chromium from Debian's packages (apt-get)"
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get install -y -q chromium >/dev/null || {
          $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null
        }
      fi
      ;;
  esac
done
