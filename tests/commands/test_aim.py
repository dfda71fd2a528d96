"""`edge-agent aim`, run as an installer runs it: a real image-folder source of public-domain
portraits, the real models, the page in real headless Chromium (the session's `browser`)."""

from __future__ import annotations

import http.client
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_agent.cli import main
from edge_agent.commands.aim import WIDTH_PX_SHARE_OF_FACE, Lens
from edge_agent.config import Config, load_config
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.values import FACE_WIDTH_M
from tests.support.images import place
from tests.support.paths import REPO
from tests.support.polling import wait_until

WAIT_MS = 30_000  # how long the page gets to show something before the test gives up
HFOV_DEG = 90.0  # not the default (70), so the distances show the configured lens is used
MIN_FACE_PX = 100.0  # between the two faces' widths (about 67 and 150 px)


@dataclass(frozen=True)
class Scene:
    """A folder source in tmp_path playing one frame with two faces, and its config."""

    root: Path
    config: Path
    frame: np.ndarray  # RGB
    cwd: Path  # the working directory the command runs in


@pytest.fixture
def scene(tmp_path: Path, astronaut: np.ndarray, grace_hopper: np.ndarray, monkeypatch) -> Scene:
    # The astronaut's face is about 67 px wide as the pipeline measures it, Grace Hopper's
    # about 150: with min_face_px 100 one is classified and the other is not.
    frame = np.hstack(
        [place(astronaut, (512, 600), (0, 44)), place(grace_hopper, (512, 600), (0, 0))]
    )
    frames = tmp_path / "frames"
    frames.mkdir()
    assert cv2.imwrite(str(frames / "two.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    config = tmp_path / "config.yaml"
    config.write_text(
        "source:\n"
        f"  spec: {frames}\n"
        "  fps: 5\n"
        f"  horizontal_fov_deg: {HFOV_DEG}\n"
        "vision:\n"
        # Not the default, whichever that is: these tests are about aim, not the detector.
        "  detector: full_range_int8\n"
        "  quality:\n"
        f"    min_face_px: {MIN_FACE_PX}\n"
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return Scene(tmp_path, config, frame, cwd)


def expected_widths(scene: Scene) -> list[float]:
    """The faces' widths, left to right, as the configured pipeline measures them."""
    config: Config = load_config(scene.config)
    faces = VisionPipeline(config.vision_settings()).faces(scene.frame)
    return [f.quality.width_px for f in sorted(faces, key=lambda f: f.detection.box.x0)]


def distance_m(width_px: float, frame_width: int) -> float:
    """The formula, written out: a face FACE_WIDTH_M wide is WIDTH_PX_SHARE_OF_FACE of it as
    the pipeline measures it, through a pinhole lens of HFOV_DEG across the frame width."""
    focal_px = (frame_width / 2) / math.tan(math.radians(HFOV_DEG) / 2)
    return FACE_WIDTH_M * focal_px / (width_px / WIDTH_PX_SHARE_OF_FACE)


def files_under(*roots: Path) -> set[Path]:
    return {path for root in roots for path in root.rglob("*") if path.is_file()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AimThread:
    """`edge-agent aim ARGS` through the real entry point, on a thread of its own."""

    def __init__(self, args: list[str]) -> None:
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(["aim", *args],), daemon=True)
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        try:
            self.code = main(argv)
        except BaseException as error:  # SystemExit from argparse included
            self.error = error

    def wait(self, timeout: float = 120.0) -> int | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "edge-agent aim did not stop by itself"
        assert self.error is None, repr(self.error)
        return self.code


def page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# --- the page --------------------------------------------------------------------------------


def test_the_page_shows_each_face_its_width_classification_and_distance(
    scene: Scene, browser: Any
) -> None:
    widths = expected_widths(scene)
    assert len(widths) == 2 and widths[0] < MIN_FACE_PX <= widths[1], widths
    before = files_under(scene.root)
    assert before == {scene.config, scene.root / "frames" / "two.png"}

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    aim = AimThread(["--config", str(scene.config), "--port", str(port), "--minutes", "0.15"])
    assert wait_until(lambda: page_answers(url) or not aim.thread.is_alive(), timeout=60)
    assert aim.thread.is_alive(), f"aim ended early: {aim.code} {aim.error!r}"

    context = browser.new_context(viewport={"width": 900, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#faces tr.face').length === 2")
        assert page.evaluate("document.body.dataset.state") == "live"
        rows = page.evaluate(
            """() => Array.from(document.querySelectorAll('#faces tr.face'), (tr) => ({
                 face: tr.dataset.face, width: Number(tr.dataset.widthPx),
                 classified: tr.dataset.classified, distance: Number(tr.dataset.distanceM),
                 cells: Array.from(tr.cells, (td) => td.textContent)}))"""
        )
        boxes = page.evaluate(
            """() => Array.from(document.querySelectorAll('#view .box'), (box) => ({
                 face: box.dataset.face, small: box.classList.contains('small'),
                 label: box.textContent, width: box.getBoundingClientRect().width}))"""
        )
        picture_width = page.evaluate("document.getElementById('frame').naturalWidth")
        limits = page.locator("#limits").inner_text()

        # The picture is scaled down to at most 640 px; the faces are measured at full size.
        assert 0 < picture_width <= 640
        assert [box["face"] for box in boxes] == ["1", "2"]
        assert all(box["width"] > 0 for box in boxes)
        for row, box, width in zip(rows, boxes, widths, strict=True):
            classified = width >= MIN_FACE_PX
            expected_m = distance_m(width, scene.frame.shape[1])
            assert row["width"] == pytest.approx(width, abs=0.06)
            assert row["cells"][1] == str(round(width))  # the width in px
            assert row["cells"][2] == "yes"  # found by the detector: counted
            assert row["classified"] == ("yes" if classified else "no")
            assert row["cells"][3] == ("yes" if classified else "no (too small)")
            assert row["distance"] == pytest.approx(expected_m, abs=0.006)
            assert row["cells"][4] == f"{expected_m:.1f} m"
            assert box["small"] is not classified
            assert f"{round(width)} px" in box["label"] and f"{expected_m:.1f} m" in box["label"]
        # The farthest a face is still classified: min_face_px through the same formula.
        assert f"up to about {distance_m(MIN_FACE_PX, scene.frame.shape[1]):.1f} m" in limits
        assert "docs/deployment.md" in limits

        # Only its own address: a page elsewhere cannot read it through a rebound DNS name.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/", headers={"Host": f"attacker.example:{port}"})
        assert connection.getresponse().status == 403
        connection.close()

        # It stops by itself; the page says so and no longer shows the picture.
        page.wait_for_function("document.body.dataset.state === 'ended'", timeout=120_000)
        assert page.evaluate("document.getElementById('frame').hasAttribute('src')") is False
        assert page.evaluate("document.querySelectorAll('#view .box').length") == 0
        assert "Nothing was stored" in page.locator("#status").inner_text()
    finally:
        context.close()
    assert aim.wait() == 0
    assert not page_answers(url)
    assert files_under(scene.root) == before  # no frame, crop or picture was written


# --- the terminal ----------------------------------------------------------------------------


def test_terminal_prints_the_faces_and_stops_by_itself(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    widths = expected_widths(scene)
    before = files_under(scene.root)
    aim = AimThread(["--config", str(scene.config), "--terminal", "--minutes", "0.05"])
    assert aim.wait() == 0
    out, err = capsys.readouterr()

    lines = [line for line in out.splitlines() if "faces |" in line]
    assert lines, out
    frame_width = scene.frame.shape[1]
    for number, width in enumerate(widths, start=1):
        classified = "yes" if width >= MIN_FACE_PX else "no (too small)"
        expected = (
            f"#{number} {width:.0f} px, counted yes, classified {classified},"
            f" {distance_m(width, frame_width):.1f} m"
        )
        assert expected in lines[0], lines[0]
    assert f"up to about {distance_m(MIN_FACE_PX, frame_width):.1f} m" in out
    assert "data:image" not in out  # no picture in the terminal

    # The privacy warning first, and why it ended last.
    assert "for installing the camera only" in err
    assert "Nothing is stored" in err
    assert "stopped after 0.05 minutes" in err.splitlines()[-1]
    assert files_under(scene.root) == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_it_cleanly(scene: Scene, signum: signal.Signals) -> None:
    before = files_under(scene.root)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "edge_agent.cli", "aim", "--config", str(scene.config)]
    process = subprocess.Popen(
        [*command, "--terminal", "--minutes", "2"],
        cwd=scene.cwd,
        env=env | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Once it prints faces it is in its loop, with its handlers in place.
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no output from edge-agent aim"
        first = process.stdout.readline()
        while "faces |" not in first and first:
            first = process.stdout.readline()
        assert "faces |" in first
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"stopped ({signum.name})" in err
    assert "Traceback" not in err
    assert files_under(scene.root) == before


# --- errors: one line each -------------------------------------------------------------------


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("edge-agent: error:")]


def test_a_camera_that_cannot_be_opened_is_one_error_line(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    config = scene.root / "camera.yaml"
    config.write_text(
        "source:\n  spec: /dev/video97\n  stall_timeout_s: 0.5\n"
        "vision:\n  detector: full_range_int8\n"
    )
    aim = AimThread(["--config", str(config), "--terminal"])
    assert aim.wait() == 2
    out, err = capsys.readouterr()
    (line,) = error_lines(err)
    assert "/dev/video97" in line
    assert "Traceback" not in err
    assert out == ""


def test_a_busy_port_is_one_error_line_naming_it(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        aim = AimThread(["--config", str(scene.config), "--port", str(port)])
        assert aim.wait() == 2
    _, err = capsys.readouterr()
    (line,) = error_lines(err)
    assert f"port {port}" in line and "in use" in line
    assert "Traceback" not in err


# --- the numbers -----------------------------------------------------------------------------


def test_distances_match_the_camera_table_in_the_deployment_guide() -> None:
    # docs/deployment.md: a Camera Module 3 (66 degrees) at 1280 px sees a 16 cm face at 2 m
    # as 79 px wide, which the pipeline measures as about 0.7 of that.
    lens = Lens(hfov_deg=66.0, frame_width_px=1280)
    assert lens.distance_m(WIDTH_PX_SHARE_OF_FACE * 79) == pytest.approx(2.0, abs=0.02)
    # Twice the width, half the distance; a wider lens, a nearer face for the same width.
    assert lens.distance_m(2 * 79 * WIDTH_PX_SHARE_OF_FACE) == pytest.approx(1.0, abs=0.01)
    assert Lens(102.0, 1280).distance_m(55.0) < lens.distance_m(55.0)


@pytest.mark.parametrize("fov", [19.9, 180.1])
def test_the_field_of_view_has_a_range(fov: float) -> None:
    with pytest.raises(ValueError, match="horizontal_fov_deg"):
        load_config(None, environ={"EDGE_AGENT__SOURCE__HORIZONTAL_FOV_DEG": str(fov)})
    assert Config().source.horizontal_fov_deg == 70.0
