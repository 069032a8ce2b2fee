#!/usr/bin/env bash
# The python-host checks: formatting, lint, types, every vector on both backends,
# the trap/limit tests and the wheel test. Expects the repository's .venv (or
# $VENV) and src/skyutils_wasm/skyutils.wasm copied from the guest build.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$HERE/../.venv}"
PY="$VENV/bin/python"
cd "$HERE"
if [ ! -f src/skyutils_wasm/skyutils.wasm ]; then
  echo "missing src/skyutils_wasm/skyutils.wasm (copy target/guest/wasm32-wasip2/wasm/skyutils_guest.wasm)" >&2
  exit 2
fi
"$PY" -m ruff format --check src tests scripts
"$PY" -m ruff check src tests scripts
"$PY" -m mypy
PYTHONPATH="$HERE/src" "$PY" -m pytest -q tests "$@"
