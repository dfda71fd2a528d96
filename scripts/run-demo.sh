#!/usr/bin/env bash
# Set up .venv and run the main job on embedded defaults: the demo footage (samples/demo.mp4)
# through the whole pipeline in real time, with live stats in the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh broker
.venv/bin/edge-agent demo "$@"
