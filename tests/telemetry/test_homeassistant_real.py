"""Home Assistant discovery in a real Home Assistant (scripts/check_homeassistant.py): the
device, its entities with units and classes, states equal to the published ones, availability
through `stopped` and `offline`, and discovery back after a Home Assistant restart.

Opt-in, because installing Home Assistant takes about 570 MB and 2-3 minutes from PyPI (reused
from ~/.cache/edge-agent afterwards): EDGE_AGENT_RUN_HOMEASSISTANT=1 runs it (`.ci/run` sets
it); EDGE_AGENT_HA_VENV names a venv to install into or reuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO


@pytest.mark.skipif(
    os.environ.get("EDGE_AGENT_RUN_HOMEASSISTANT") != "1",
    reason="installs Home Assistant from PyPI: set EDGE_AGENT_RUN_HOMEASSISTANT=1",
)
def test_a_real_home_assistant_discovers_the_display_and_follows_it(tmp_path):
    out = tmp_path / "ha.json"
    command = [sys.executable, str(REPO / "scripts" / "check_homeassistant.py")]
    command += ["--json", str(out)]
    if os.environ.get("EDGE_AGENT_HA_VENV"):
        command += ["--ha-venv", os.environ["EDGE_AGENT_HA_VENV"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["passed"] is True
    assert all(check["passed"] for check in result["checks"]), result["checks"]
    assert len(result["entities"]) >= 10
    assert all(entity["entity_id"] for entity in result["entities"])
    assert result["discovery_s"] is not None and result["recovery_s"] is not None
    assert result["compared_today"]["passers_by"] > 0
