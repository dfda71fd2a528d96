"""Where scripts/install.sh puts things on a display.

The operations commands (doctor, notice, kiosk) default to the installed configuration, and the
tools find the installed models, without being told. Standard library only: the CLI's help
texts name these paths before any heavy module loads.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = Path("/etc/edge-agent/config.yaml")
# Secrets as EDGE_AGENT__SECTION__KEY=value, root only; the service's EnvironmentFile=.
ENVIRONMENT = Path("/etc/edge-agent/environment")
MODELS_DIR = Path("/opt/edge-agent/models")
