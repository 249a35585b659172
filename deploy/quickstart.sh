#!/usr/bin/env bash
# The README's first command: make a virtual environment in .venv (PEP 668 systems such as
# Debian 12, Ubuntu 23.04+ and Raspberry Pi OS refuse pip outside one), install fer-edge with what
# a camera box needs, and analyse a demo clip with the bundled model. Extra arguments go to
# `fer-edge run --demo` (for example --mqtt HOST). PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "quickstart: $python not found; install Python 3.10 or newer" >&2; exit 69; }
if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
  echo "quickstart: $python cannot make a virtual environment; on Debian, Ubuntu or Raspberry Pi OS: sudo apt-get install python3-venv" >&2
  exit 69
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${FER_EDGE_EXTRAS:-device}]"
exec .venv/bin/fer-edge run --demo "$@"
