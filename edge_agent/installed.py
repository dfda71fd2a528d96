"""Where scripts/install.sh puts things on a display, and where the models are found.

The operations commands (doctor, notice, kiosk) default to the installed configuration, and the
tools find the installed models, without being told. Standard library only: the CLI's help
texts name these paths before any heavy module loads.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = Path("/etc/edge-agent/config.yaml")
# Secrets as EDGE_AGENT__SECTION__KEY=value, root only; the service's EnvironmentFile=.
ENVIRONMENT = Path("/etc/edge-agent/environment")
MODELS_DIR = Path("/opt/edge-agent/models")


def default_models_dir() -> Path:
    """EDGE_AGENT_MODELS if set, else the `models/` folder beside the package (a checkout),
    else the installed display's /opt/edge-agent/models."""
    configured = os.environ.get("EDGE_AGENT_MODELS")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1] / "models"
    if not checkout.is_dir() and MODELS_DIR.is_dir():
        return MODELS_DIR
    return checkout
