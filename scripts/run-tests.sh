#!/usr/bin/env bash
# Set up .venv with the test and benchmark extras, lint, and run the test suite.
# pytest's own exit code is kept: 5 (no tests collected) fails like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh dev,bench
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
