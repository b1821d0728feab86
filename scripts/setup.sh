#!/usr/bin/env bash
# Idempotent set-up: a virtual environment with the pinned stack, this package in editable mode (with Ray),
# and the embedded assets (generated open hand model, MediaPipe landmark models from PyPI).
# Re-running is fast: the install is skipped while requirements.txt and setup.py are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HAWOR_VENV:-.venv}
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
stamp="$VENV/.hawor-installed-$(cat requirements.txt setup.py | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  echo "[setup] installing requirements into $VENV (first run: a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  # the [ray] extra too, so that the test suite runs the Ray batch tests (users may leave it out)
  "$VENV/bin/python" -m pip install -q -e ".[ray]"
  rm -f "$VENV"/.hawor-installed-*
  touch "$stamp"
fi
"$VENV/bin/python" -m hawor.assets
