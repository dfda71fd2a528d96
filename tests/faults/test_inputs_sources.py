"""Sources on bad files: empty and 0-frame videos, damaged ones, undecodable images; the
daemon's exit code on them; the demo broker's port after a quick re-run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge_agent.sources.base import EndOfStream, SourceError
from edge_agent.sources.images import ImageFolderSource
from edge_agent.sources.opencv import OpenCVSource
from tests.faults.inputs_support import damage, edge_agent, write_config, write_video
from tests.support.paths import REPO


def test_a_looping_file_without_frames_is_a_broken_source_not_an_end(tmp_path):
    """Replaced by an empty video mid-run, the file must be retried like a lost camera: an
    end of stream would end the daemon, with exit code 0."""
    video = write_video(tmp_path / "zero.avi", 0)
    with OpenCVSource(video, loop=True) as source, pytest.raises(SourceError) as raised:
        source.read(1.0)
    assert not isinstance(raised.value, EndOfStream)
    assert "has no frames" in str(raised.value)


def test_run_on_a_video_without_frames_fails_so_systemd_restarts_it(tmp_path):
    config = write_config(tmp_path, write_video(tmp_path / "zero.avi", 0))
    done = edge_agent("run", "--config", str(config), timeout=120)
    assert done.returncode == 1, done.stderr
    assert "ended without a single frame" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_keeps_retrying_a_looping_file_that_has_no_frames(tmp_path):
    video = write_video(tmp_path / "zero.avi", 0)
    config = write_config(tmp_path, video, source={"loop": True})
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            lines.append(process.stdout.readline())
            if sum("has no frames" in line for line in lines) >= 2:
                break  # tried, failed, and tried again
        assert process.poll() is None, "".join(lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_an_undecodable_image_is_reported_once_however_often_the_folder_loops(tmp_path, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), dtype=np.uint8))
    (tmp_path / "b.jpg").write_text("not an image")
    with caplog.at_level(logging.WARNING), ImageFolderSource(tmp_path, loop=True) as source:
        frames = [source.read(1.0) for _ in range(20)]
    assert all(frame is not None for frame in frames)
    skipped = [r for r in caplog.records if "not a readable image" in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in skipped]


def test_a_damaged_video_is_reported_once_in_our_words_without_ffmpegs_flood(tmp_path):
    """FFmpeg printed ~130 lines for this file (about 80 a second at real time)."""
    damaged = damage(REPO / "samples" / "demo.mp4", tmp_path / "damaged.mp4")
    script = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "from edge_agent.sources.opencv import OpenCVSource\n"
        f"source = OpenCVSource({str(damaged)!r}, loop=True)\n"
        "source.open()\n"
        "for _ in range(400): source.read(1.0)\n"  # past the damage and round again
        "source.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    damaged_lines = [line for line in lines if "looks damaged" in line]
    assert len(damaged_lines) == 1, lines
    assert "of its 731 frames could be decoded" in damaged_lines[0]
    assert len(lines) == 1, lines[:20]


def test_the_demo_broker_gets_its_port_back_on_a_quick_rerun():
    """The connections of the last run linger in TIME_WAIT; they must not move the next
    broker off the port the README's dashboard command connects to."""
    pytest.importorskip("amqtt")
    from edge_agent.telemetry.embedded_broker import EmbeddedBroker, free_port

    first = EmbeddedBroker(preferred_port=free_port())
    port = first.port
    first.start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.is_connected()
        first.stop()  # the broker closes the connection first: TIME_WAIT on its side
    finally:
        client.loop_stop()
        client.disconnect()
    second = EmbeddedBroker(preferred_port=port)
    assert second.port == port
