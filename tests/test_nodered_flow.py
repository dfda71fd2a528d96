"""The Node-RED flow documented in docs/mqtt.md, run in a real Node-RED against a real mosquitto
and the real daemon (scripts/check_nodered.py). Node-RED comes from npm at test time, so the
test needs node and npm: without them it is skipped, unless EDGE_AGENT_REQUIRE_NODERED=1 (CI)
fails it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import REPO


def test_documented_node_red_flow_counts_every_report_once(tmp_path):
    if shutil.which("npm") is None or not (shutil.which("node") or shutil.which("nodejs")):
        why = "node and npm are not installed"
        if os.environ.get("EDGE_AGENT_REQUIRE_NODERED") == "1":
            pytest.fail(f"{why}, and EDGE_AGENT_REQUIRE_NODERED=1")
        pytest.skip(why)
    out = tmp_path / "nodered.json"
    command = [sys.executable, str(REPO / "scripts" / "check_nodered.py"), "--run-s", "30"]
    command += ["--node-red-dir", str(tmp_path / "node-red"), "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    # The flow's HTTP endpoint answers what a subscriber of the broker saw, with the one report
    # published twice counted once.
    assert result["passed"] is True
    assert result["reports_received"] >= 2
    assert result["duplicate_published"] is not None
    flow = result["flow_answered"]
    expected = result["expected"]
    assert flow["windows"] == expected["windows"]
    assert flow["passers_by"] == expected["passers_by"] > 0
    assert flow["segments"] == expected["segments"]
