"""`edge-agent demo` (and `analyze`) on inputs that cannot work: a real process each time, with
a timeout as the guard against the old behaviour of retrying for ever."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.faults.inputs_support import edge_agent, write_video
from tests.support.paths import REPO

# The process starts Python and OpenCV first (under a second here): the acceptance is "within
# 5 s"; the guard is wider so a slow CI machine does not fail it, while a retry loop still does.
HANG_GUARD_S = 20


def _not_a_video(tmp_path: Path) -> Path:
    return REPO / "config.yaml"


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def _no_frames(tmp_path: Path) -> Path:
    return write_video(tmp_path / "zero.avi", 0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing.mp4", "video file not found"),
        (_not_a_video, "not a video"),
        (_empty, "not a video"),
        (_no_frames, "has no frames"),
    ],
    ids=["missing", "config-yaml", "empty-file", "zero-frames"],
)
def test_demo_on_a_file_that_cannot_play_exits_at_once_saying_why(tmp_path, make, reason):
    video = make(tmp_path)
    done = edge_agent("demo", "--no-mqtt", "--video", str(video), timeout=HANG_GUARD_S)
    assert done.returncode != 0
    assert done.stderr.startswith("edge-agent: error: "), done.stderr
    assert reason in done.stderr and str(video) in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # no decoder noise


def test_demo_takes_the_kiosk_port_from_the_environment_and_advises_what_it_takes(tmp_path):
    video = write_video(tmp_path / "short.avi", 3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = edge_agent(
            "demo", "--no-mqtt", "--video", str(video),
            env={"EDGE_AGENT__ADS__WEB__PORT": port}, timeout=120,
        )  # fmt: skip
    assert done.returncode != 0, done.stdout
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"edge-agent: error: port {port} on 127.0.0.1 is in use"), error
    assert "--kiosk-port" in error and "ads.web.port" not in error


def test_demo_kiosk_port_option_moves_the_page(tmp_path):
    video = write_video(tmp_path / "short.avi", 3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = edge_agent(
        "demo", "--no-mqtt", "--video", str(video), "--kiosk-port", str(port), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"kiosk page: http://127.0.0.1:{port}/" in done.stdout


def test_demo_says_unsent_messages_are_lost_with_its_temporary_outbox(tmp_path):
    """With a broker nobody answers on, the last messages cannot be sent; the demo's outbox
    is deleted at exit, so they do not "stay in the outbox"."""
    video = write_video(tmp_path / "short.avi", 3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # closed again: nothing listens there
    done = edge_agent(
        "demo", "--video", str(video), "--broker", f"127.0.0.1:{dead}", "--kiosk-port", "0",
        timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "stay in the outbox" not in output
    assert "are lost, the demo's outbox is a temporary folder deleted at exit" in output


def test_analyze_a_missing_image_says_no_such_file(tmp_path):
    missing = tmp_path / "missing.jpg"
    done = edge_agent("analyze", str(missing), timeout=HANG_GUARD_S)
    assert done.returncode != 0
    assert done.stderr == f"edge-agent: error: {missing}: no such file\n"
