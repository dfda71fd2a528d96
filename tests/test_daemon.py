"""The daemon end to end: a real video file, real models, real signals and sd_notify."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.config import load_config
from edge_agent.daemon import Daemon
from tests.support.images import ASTRONAUT_SEGMENT, place
from tests.support.paths import REPO

FPS = 10


@pytest.fixture(scope="module")
def walk_video(tmp_path_factory, astronaut) -> Path:
    """3 s of video: empty, the astronaut stands looking for 2 s, empty."""
    path = tmp_path_factory.mktemp("video") / "visit.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    here = cv2.cvtColor(place(astronaut, (640, 480), (120, 0), 0.9), cv2.COLOR_RGB2BGR)
    empty = np.full((480, 640, 3), 114, dtype=np.uint8)
    for image in [empty] * 5 + [here] * 20 + [empty] * 10:
        writer.write(image)
    writer.release()
    return path


def write_config(
    tmp_path: Path, video: Path, *, mqtt: dict[str, object] | None = None, **source: object
) -> Path:
    """`mqtt` None: telemetry off, so no test publishes to a broker it does not own."""
    options = {"loop": False, "realtime": False, **source}
    lines = ["source:", f"  spec: {video}"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in options.items()]
    lines += [
        "audience:",
        "  window_s: 600",
        "  min_segment_size: 1",
        "tracking:",
        "  lost_after_s: 0.5",
        # The real kiosk server, on a free port; the state folder stays in the test's folder.
        "ads:",
        "  web:",
        "    port: 0",
        "state:",
        f"  dir: {tmp_path / 'state'}",
        "mqtt:",
    ]
    lines += [
        f"  {key}: {json.dumps(value)}" for key, value in (mqtt or {"enabled": False}).items()
    ]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_run_counts_the_visit_and_flushes_at_the_end(tmp_path, walk_video):
    reports = []
    daemon = Daemon(load_config(write_config(tmp_path, walk_video), environ={}),
                    on_report=reports.append)  # fmt: skip
    assert daemon.run() == 0  # the file ends: the daemon stops by itself
    total = sum(r.passers_by for r in reports)
    assert total == 1
    (visit,) = [r for r in reports if r.passers_by]
    assert visit.segments == {ASTRONAUT_SEGMENT: 1}


def run_under_fake_systemd(
    tmp_path: Path, config: Path, **environ: str
) -> tuple[subprocess.Popen[str], socket.socket]:
    """`edge-agent run` as a child with NOTIFY_SOCKET pointing at a socket the test reads."""
    notify = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify))
    server.settimeout(60)
    script = Path(sys.executable).with_name("edge-agent")
    process = subprocess.Popen(
        [str(script), "run", "--config", str(config)],
        env={**os.environ, "NOTIFY_SOCKET": str(notify), **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, server


def test_sigterm_stops_cleanly_and_quickly(tmp_path, walk_video):
    config = write_config(tmp_path, walk_video, loop=True, realtime=True)
    process, server = run_under_fake_systemd(tmp_path, config)
    try:
        assert b"READY=1" in server.recv(256)  # models loaded, ads and telemetry up
        time.sleep(1.0)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
    output = process.stdout.read()
    assert code == 0, output
    assert stopped_in < 2.0, output
    assert "received SIGTERM" in output
    assert '"type": "audience_report"' in output  # the open window was flushed


def test_a_dead_camera_still_gets_ready_and_watchdog_pings(tmp_path, walk_video):
    """READY must not wait for a frame: systemd would kill a service whose camera is unplugged
    (and the screen with it) at TimeoutStartSec. The loop keeps pinging the watchdog and says
    in STATUS why nothing is counted."""
    config = write_config(tmp_path, walk_video)
    config.write_text(config.read_text().replace(f"spec: {walk_video}", "spec: /dev/video97"))
    # WATCHDOG_PID must be the daemon's own: it is the child, so leave it unset.
    process, server = run_under_fake_systemd(tmp_path, config, WATCHDOG_USEC="1000000")
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            messages.append(server.recv(512).decode())
            pings = sum(message == "WATCHDOG=1" for message in messages)
            if pings >= 3 and any("no frames from /dev/video97" in m for m in messages):
                break
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
    output = process.stdout.read()
    assert code == 0, output
    ready = [m for m in messages if m.startswith("READY=1")]
    assert ready and "waiting for frames from /dev/video97" in ready[0], messages
    assert sum(message == "WATCHDOG=1" for message in messages) >= 3, messages
    assert any("STATUS=no frames from /dev/video97" in m for m in messages), messages
    assert not any("processing frames" in m for m in messages), messages


def test_bad_config_exits_with_file_line_and_key(tmp_path, capsys):
    from edge_agent.cli import main

    config = tmp_path / "bad.yaml"
    config.write_text("vision:\n  threads: many\n")
    assert main(["run", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert f"{config}:2: vision.threads:" in error


def test_config_check_and_schema(tmp_path, capsys):
    from edge_agent.cli import main

    repo_config = REPO / "config.yaml"
    assert main(["config", "check", str(repo_config)]) == 0
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "vision" in schema["properties"]


def test_demo_plays_a_video_with_live_stats(walk_video, tmp_path, capsys):
    from edge_agent.cli import main

    reports = tmp_path / "reports.json"
    assert main(["demo", "--video", str(walk_video), "--json", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "present 1" in out  # the live line saw her
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["passers_by"] == 1 and summary["viewers"] == 1
    assert sum(r["passers_by"] for r in json.loads(reports.read_text())) == 1


def test_demo_without_mqtt_publishes_nothing_and_needs_no_broker(walk_video, capsys):
    from edge_agent.cli import main

    assert main(["demo", "--no-mqtt", "--video", str(walk_video)]) == 0
    out = capsys.readouterr().out
    assert "MQTT:" not in out  # neither a broker address nor a received-back summary
    assert json.loads(out.strip().splitlines()[-1])["passers_by"] == 1


def test_frames_touch_disk_only_when_the_debug_option_says_so(tmp_path, walk_video, caplog):
    config_path = write_config(tmp_path, walk_video)
    before = set(tmp_path.rglob("*"))
    Daemon(load_config(config_path, environ={}), on_report=lambda r: None).run()
    written = set(tmp_path.rglob("*")) - before
    # Nothing but the copy of the last good ad rules.
    assert written <= {tmp_path / "state", tmp_path / "state" / "rules.last-good.yaml"}

    debug_dir = tmp_path / "debug"
    environ = {"EDGE_AGENT__DEBUG__SAVE_ANNOTATED_FRAMES_DIR": str(debug_dir)}
    with caplog.at_level("WARNING"):
        daemon = Daemon(load_config(config_path, environ=environ), on_report=lambda r: None)
    assert "PRIVACY" in caplog.text
    daemon.run()
    written = sorted(debug_dir.glob("frame_*.jpg"))
    assert 1 <= len(written) <= 3  # at most one a second of a 3.5 s clip
    assert cv2.imread(str(written[0])).shape == (480, 640, 3)


def test_ads_follow_the_audience_and_every_play_is_accounted_for(tmp_path, walk_video):
    from tests.support.ads import BASE, write_rules

    head = BASE.replace("default_min_play_s: 2", "default_min_play_s: 0")
    rules = write_rules(
        tmp_path / "ads",
        "- {id: someone-there, creatives: [t1], play: {min_s: 0}}\n",
        head=head.replace("minors: {playlist: [n]}", "minors: {protect: false}"),
    )
    environ = {"EDGE_AGENT__ADS__RULES": str(rules), "EDGE_AGENT__ADS__PLAYER": "none"}
    starts, events = [], []
    daemon = Daemon(
        load_config(write_config(tmp_path, walk_video), environ=environ),
        on_report=lambda r: None,
        on_play_start=lambda play, decision: starts.append(play),
        on_play_event=events.append,
    )
    daemon.run()
    assert starts[0].creative.creative_id == "a"  # the default playlist, before any frame
    assert "someone-there" in [play.rule_id for play in starts]
    assert [e.play_id for e in events] == [s.play_id for s in starts]
    (targeted,) = [e for e in events if e.rule_id == "someone-there"]
    assert targeted.audience.people == 1
    assert targeted.ended_by.value in ("completed", "shutdown")


def test_unusable_rules_stop_start_up_with_file_line_and_key(tmp_path, walk_video, capsys):
    from edge_agent.cli import main

    rules = tmp_path / "rules.yaml"
    rules.write_text("default_playlist: [a]\ncreatives: [{id: a, file: a.png}]\n")
    config = write_config(tmp_path, walk_video)
    config.write_text(config.read_text().replace("ads:\n", f"ads:\n  rules: {rules}\n"))
    assert main(["run", "--config", str(config)]) == 2
    assert f"{rules}:2: creatives[0].file: no such file" in capsys.readouterr().err


def test_daemon_publishes_the_whole_contract_to_a_real_broker(tmp_path, walk_video, broker):
    """Real video, real models, real rules, real broker: reports, plays, decisions, stats and
    states arrive and follow their schemas; the counts match what the daemon reported; the only
    files written are the state folder's own."""
    from tests.support.ads import BASE, write_rules
    from tests.support.mqtt_broker import Collector
    from tests.support.telemetry import problems

    rules = write_rules(
        tmp_path / "ads",
        "- {id: someone-there, creatives: [t1], play: {min_s: 0}}\n",
        head=BASE.replace("default_min_play_s: 2", "default_min_play_s: 0").replace(
            "minors: {playlist: [n]}", "minors: {protect: false}"
        ),
    )
    mqtt = {"host": broker.host, "port": broker.port, "site": "shop", "device": "screen-1"}
    config_path = write_config(tmp_path, walk_video, mqtt=mqtt)
    environ = {
        "EDGE_AGENT__ADS__RULES": str(rules),
        "EDGE_AGENT__ADS__PLAYER": "none",
        "EDGE_AGENT__AUDIENCE__WINDOW_S": "1",
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "0.05",
    }
    collector = Collector(broker, ["edge-agent/shop/screen-1/#"])
    assert collector.wait_connected()
    reports, events = [], []
    before = set(tmp_path.rglob("*"))
    daemon = Daemon(
        load_config(config_path, environ=environ),
        on_report=reports.append,
        on_play_event=events.append,
    )
    daemon.run()
    # run() returns after the link's final flush: everything is on the broker already.
    root = "edge-agent/shop/screen-1"
    assert collector.wait_for(
        lambda: any(b'"stopped"' in p for p in collector.payloads(f"{root}/availability"))
    )
    collector.close()

    for message in collector.messages():
        assert problems(message.payload) == [], (message.topic, message.payload)
    published = [json.loads(p) for p in collector.payloads(f"{root}/audience/report")]
    assert len(published) == len(reports)
    assert sum(r["passers_by"] for r in published) == sum(r.passers_by for r in reports) == 1
    plays = [json.loads(p) for p in collector.payloads(f"{root}/ads/play")]
    assert [p["play_id"] for p in plays] == [e.play_id for e in events]
    decisions = [json.loads(p) for p in collector.payloads(f"{root}/ads/decision")]
    assert "someone-there" in [d["rule_id"] for d in decisions]
    assert collector.messages(f"{root}/stats"), "stats every 0.05 s"
    today = json.loads(collector.payloads(f"{root}/audience/today")[-1])
    assert today["passers_by"] == 1
    states = [json.loads(p)["state"] for p in collector.payloads(f"{root}/availability")]
    assert states == ["online", "stopped"]

    written = {path.relative_to(tmp_path).as_posix() for path in set(tmp_path.rglob("*")) - before}
    allowed = {"state", "state/rules.last-good.yaml", "state/audience-today.json"}
    outbox = {"state/outbox.sqlite", "state/outbox.sqlite-wal", "state/outbox.sqlite-shm"}
    assert written - outbox <= allowed, "no image, crop or per-person record on disk"
