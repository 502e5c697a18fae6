#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment at .venv.
# Idempotent: installs only when .venv is missing or pyproject.toml / this script changed
# (then pip brings the existing environment up to date in place).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || { echo "setup: $PY not found; install Python 3.11 or set PYTHON=" >&2; exit 1; }
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -x .venv/bin/python ] && [ "$(cat .venv/.deps-hash 2>/dev/null || true)" = "$HASH" ] \
   && .venv/bin/python -c "import slimlib, torch, timm, torchgeo, jupyter_book" 2>/dev/null; then
  echo "setup: .venv is up to date ($HASH)"
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
case "$(uname -m)" in
  x86_64) TORCH="torch==2.14.1 torchvision==0.29.1" ;;
  *)      TORCH="torch torchvision" ;;
esac
# shellcheck disable=SC2086
.venv/bin/python -m pip install $TORCH -e ".[all,dev]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (slimlib)" >/dev/null
echo "$HASH" > .venv/.deps-hash
echo "setup: done"
