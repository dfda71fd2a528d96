"""scripts/soak.py: the real daemon, a real mosquitto stopped and started, every report counted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.support.mqtt_broker import find_mosquitto, mosquitto_required
from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "soak.py"


def load_soak():
    if "soak" not in sys.modules:
        sys.path.insert(0, str(SCRIPT.parent))  # its helpers are imported as top-level modules
        spec = importlib.util.spec_from_file_location("soak", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["soak"]


def run_soak(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        cwd=REPO,
    )


def test_a_short_soak_with_a_broker_bounce_loses_nothing_and_samples_the_daemon(tmp_path):
    if find_mosquitto() is None:
        if mosquitto_required():
            pytest.fail("mosquitto is required (EDGE_AGENT_REQUIRE_MOSQUITTO=1) but not installed")
        pytest.skip("mosquitto is not installed")
    out = tmp_path / "soak.json"
    # The seed puts one broker stop of 3-5 s inside the 35 s.
    result = run_soak(
        *("--duration", "35", "--bounce-every", "20", "--down-for", "3", "5"),
        *("--window-s", "3", "--sample-every", "2", "--drain", "30", "--seed", "7"),
        *("--json", str(out)),
        timeout=180,  # a guard against a hang, not a speed check
    )
    assert result.returncode == 0, result.stdout + result.stderr
    numbers = json.loads(out.read_text())
    reports = numbers["reports"]
    assert numbers["bounces"] >= 1
    assert reports["lost"] == 0, reports
    assert reports["made"] >= 3  # windows of 3 s over 35 s, after the models load
    assert reports["received_unique"] == reports["made"]
    assert numbers["daemon_died"] is False
    assert numbers["daemon_exit_code"] == 0
    assert numbers["failures"] == []
    assert reports["longest_window_s"] < 3 * 3  # no stall of the footage
    series = numbers["sample_series"]
    assert len(series) >= 10  # one every 2 s over 35 s
    assert any(not sample["broker_up"] for sample in series)  # sampled during the outage too
    steady = [s for s in series if s["t_s"] >= numbers["warmup_s"]]
    assert steady
    # The daemon's own numbers, not the soak's: it loads models (tens of MB), runs a network
    # thread and a frame reader, and holds sockets, the video and its SQLite outbox open.
    assert all(s["rss_kb"] > 30_000 for s in steady)
    assert all(s["threads"] >= 3 for s in steady)
    assert all(s["fds"] >= 5 for s in steady)
    assert numbers["rss_mb"]["growth_mb_per_h"] is not None
    assert "LOST" in result.stdout and "RSS growth" in result.stdout


def test_a_missing_video_is_a_one_line_error(tmp_path):
    result = run_soak("--video", str(tmp_path / "missing.mp4"), timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "missing.mp4" in lines[0] and "no such file" in lines[0]


def report(start: float, end: float) -> dict[str, object]:
    """What the daemon logs for a window."""
    return {"type": "audience_report", "window_start_wall": start, "window_end_wall": end}


def payload(message_id: str, start: float, end: float) -> dict[str, object]:
    """What arrives over MQTT for that window."""
    iso = load_soak().iso
    return {"id": message_id, "window_start": iso(start), "window_end": iso(end)}


def test_reports_check_counts_a_window_that_never_arrived_and_a_gap_as_lost():
    check = load_soak().check_reports
    base = 1_800_000_000.0
    logged = [report(base + 10 * i, base + 10 * (i + 1)) for i in range(4)]
    everything = [payload(f"id{i}", base + 10 * i, base + 10 * (i + 1)) for i in range(4)]

    whole = check(logged, [*everything, everything[1]])  # one re-sent after a cut
    assert (whole["lost"], whole["duplicates"], whole["received_unique"]) == (0, 1, 4)

    without_third = check(logged, [everything[0], everything[1], everything[3]])
    assert without_third["lost"] == 1  # logged, never arrived; its gap is not counted twice
    assert without_third["missing"][0]["window_end"] == everything[2]["window_end"]

    # A window the log does not show (a log line lost) still leaves a gap in what arrived.
    gap = check(logged[:2] + logged[3:], [everything[0], everything[1], everything[3]])
    assert gap["lost"] == 1 and len(gap["gaps"]) == 1
