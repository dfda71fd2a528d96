"""`edge-agent kiosk`: the page address from the config, waiting for the daemon, then Chromium.

The real browser runs here too: headless (no screen in CI), with the kiosk service's own flags,
on the real player page, which comes up only after the command started waiting for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.ads.players.chromium import KIOSK_ARGS, find_chromium
from edge_agent.ads.players.web import WebPlayer
from edge_agent.commands.kiosk import SERVICE_ARGS, browser_command
from tests.support.mqtt_broker import free_port

EDGE_AGENT = Path(sys.executable).with_name("edge-agent")


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"ads:\n  web:\n    host: 127.0.0.1\n    port: {port}\n")
    return path


def kiosk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE_AGENT), "kiosk", *args], capture_output=True, text=True, timeout=timeout
    )


def test_print_shows_the_configured_page_with_the_kiosk_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path, 8911)
    result = kiosk("--config", str(config), "--print", "--", "--force-device-scale-factor=2")
    if result.returncode == 2:
        pytest.skip("no Chromium here: " + result.stderr.strip())
    command = result.stdout.split()
    assert command[-1] == "http://127.0.0.1:8911/"
    assert command[1 : 1 + len(KIOSK_ARGS)] == KIOSK_ARGS
    assert set(SERVICE_ARGS) <= set(command)
    assert "--force-device-scale-factor=2" in command


def test_wayland_is_used_under_a_wayland_compositor() -> None:
    plain = browser_command("chromium", "http://x/", [], environ={})
    under_cage = browser_command("chromium", "http://x/", [], environ={"WAYLAND_DISPLAY": "w-0"})
    assert "--ozone-platform=wayland" not in plain
    assert "--ozone-platform=wayland" in under_cage


def test_without_a_page_it_gives_up_and_says_why(tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.skip("no Chromium here")
    config = write_config(tmp_path, free_port())
    started = time.monotonic()
    result = kiosk("--config", str(config), "--wait", "1.5")
    assert result.returncode == 1
    assert time.monotonic() - started >= 1.5
    assert "no player page at http://127.0.0.1:" in result.stderr
    assert "journalctl -u edge-agent" in result.stderr


def test_it_waits_for_the_daemon_then_becomes_chromium_on_the_page(tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("EDGE_AGENT_REQUIRE_CHROMIUM") == "1":
            pytest.fail("no Chromium, and EDGE_AGENT_REQUIRE_CHROMIUM=1")
        pytest.skip("no Chromium here")
    port = free_port()
    config = write_config(tmp_path, port)
    player = WebPlayer(port=port)
    # The daemon comes up after the kiosk: the browser must not open before the page answers.
    late_start = threading.Timer(1.5, player.start)
    late_start.start()
    try:
        result = kiosk(
            "--config",
            str(config),
            "--wait",
            "30",
            "--",
            "--headless=new",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--dump-dom",  # print the loaded page and exit: the proof it opened the page
        )
    finally:
        late_start.join()
        player.close()
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"opening http://127.0.0.1:{port}/" in result.stderr
    assert 'id="layer-a"' in result.stdout and "/static/kiosk.js" in result.stdout
