#!/usr/bin/env bash
# Create (or reuse) .venv and install edge-agent into it with the given extras.
# Usage: scripts/setup-venv.sh [EXTRAS]   e.g. scripts/setup-venv.sh dev,bench
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "edge-agent needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    # Debian and Raspberry Pi OS ship venv separately: apt-get install python3-venv.
    "$python" -m venv .venv
fi
target="."
if [ -n "${1:-}" ]; then
    target=".[$1]"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e "$target"
