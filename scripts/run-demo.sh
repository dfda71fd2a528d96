#!/usr/bin/env bash
# Set up .venv and run the main job on embedded defaults: analyze the bundled sample photo.
# (The daemon's `edge-agent demo` replaces this once it lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv/bin/edge-agent analyze samples/astronaut.jpg "$@"
