"""Sources against real files, real OpenCV, real sockets; the Pi camera against a stand-in."""

from __future__ import annotations

import itertools
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.sources.base import (
    EndOfStream,
    FrameSource,
    SourceError,
    VideoClock,
    redact_url,
)
from edge_agent.sources.factory import open_source, reader_for
from edge_agent.sources.images import ImageFolderSource
from edge_agent.sources.opencv import OpenCVSource
from edge_agent.sources.picamera import PiCameraSource
from edge_agent.sources.reader import LatestFrameReader
from edge_agent.sources.values import Frame, SourceSettings
from tests.support import fake_picamera2
from tests.support.polling import wait_until

FRAMES = 30
FPS = 30.0
WIDTH, HEIGHT = 160, 120
RED_BGR = (0, 0, 255)


def encoded_index(image: np.ndarray) -> int:
    """The index written into a test frame: a grey level of 8 * index in the right half."""
    return round(float(image[HEIGHT // 2, 3 * WIDTH // 4].mean()) / 8)


def assert_red_left_half(image: np.ndarray) -> None:
    """The left half was written pure red in OpenCV's BGR; it must come out as RGB red."""
    red, green, blue = (int(v) for v in image[HEIGHT // 2, WIDTH // 4])
    assert red > 230 and green < 25 and blue < 25, (red, green, blue)


def make_frame(index: int) -> np.ndarray:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:, : WIDTH // 2] = RED_BGR
    image[:, WIDTH // 2 :] = 8 * index
    return image


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "count.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for index in range(FRAMES):
        writer.write(make_frame(index))
    writer.release()
    return path


# --- OpenCV: files -------------------------------------------------------------------------


def test_file_gives_every_frame_in_order_as_rgb_then_ends(video_file: Path) -> None:
    with OpenCVSource(video_file) as source:
        frames = list(source.frames())
        with pytest.raises(EndOfStream, match=r"count\.avi"):
            source.read(1.0)
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [encoded_index(f.image) for f in frames] == list(range(FRAMES))
    for frame in frames:
        assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
        assert_red_left_half(frame.image)
    assert all(a.monotonic <= b.monotonic for a, b in itertools.pairwise(frames))


def test_file_loop_wraps_around(video_file: Path) -> None:
    with OpenCVSource(video_file, loop=True) as source:
        frames = [source.read(1.0) for _ in range(2 * FRAMES + 10)]
    assert [f.index for f in frames] == list(range(2 * FRAMES + 10))
    assert [encoded_index(f.image) for f in frames] == [i % FRAMES for i in range(len(frames))]


def test_a_file_read_as_fast_as_possible_is_timed_by_its_own_clock(video_file: Path) -> None:
    # Decoded in a fraction of their 2 s, with looping: the frames still say 1/30 s apart,
    # and the wall time goes with them.
    with OpenCVSource(video_file, loop=True) as source:
        started = time.monotonic()
        frames = [source.read(1.0) for _ in range(2 * FRAMES)]
        decoding_s = time.monotonic() - started
    steps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(frames)]
    assert steps == pytest.approx([1 / FPS] * (2 * FRAMES - 1))
    walls = [b.wall_time - a.wall_time for a, b in itertools.pairwise(frames)]
    assert walls == pytest.approx(steps, abs=1e-5)
    assert frames[-1].monotonic - frames[0].monotonic > decoding_s


def test_a_files_clock_goes_on_across_reopening(video_file: Path) -> None:
    # The reader builds a fresh source after a failure; the file's time must not restart.
    clock = VideoClock()
    with OpenCVSource(video_file, clock=clock) as first:
        before = [first.read(1.0) for _ in range(10)]
    with OpenCVSource(video_file, clock=clock) as second:
        after = [second.read(1.0) for _ in range(10)]
    times = [f.monotonic for f in before + after if f is not None]
    assert len(times) == 20
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1 / FPS] * 19)


def test_the_reader_of_a_file_read_as_fast_as_possible_shares_one_clock(
    video_file: Path,
) -> None:
    reader = reader_for(SourceSettings(spec=str(video_file), realtime=False))
    with reader:
        frames = [reader.latest(timeout=5.0) for _ in range(FRAMES)]
    times = [f.monotonic for f in frames if f is not None]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1 / FPS] * (FRAMES - 1))


def test_file_realtime_is_paced_to_the_file_rate(video_file: Path) -> None:
    count = 15
    with OpenCVSource(video_file, realtime=True) as source:
        start = time.monotonic()
        for _ in range(count):
            assert source.read(1.0) is not None
        elapsed = time.monotonic() - start
    # A lower bound only: the first frame is due at once, the others 1/FPS apart.
    assert elapsed >= 0.7 * (count - 1) / FPS


def test_missing_file_error_names_the_file(tmp_path: Path) -> None:
    source = OpenCVSource(tmp_path / "nowhere.mp4")
    with pytest.raises(SourceError, match=r"video file not found: .*nowhere\.mp4"):
        source.open()
    source.close()  # closing a source that never opened is fine


def test_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(SourceError, match=r"notes\.mp4"):
        OpenCVSource(path).open()


def test_options_that_do_not_fit_the_target_are_refused() -> None:
    with pytest.raises(ValueError, match="video files only"):
        OpenCVSource("rtsp://cam/stream", loop=True)
    with pytest.raises(ValueError, match="device"):
        OpenCVSource("clip.mp4", width=640, height=480)


def test_urls_are_described_without_passwords() -> None:
    source = OpenCVSource("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    assert "hunter2" not in source.describe()
    assert "rtsp://admin:***@10.0.0.5:554/stream1" in source.describe()
    assert redact_url("http://cam.local/video.mjpg") == "http://cam.local/video.mjpg"


# --- image folders ---------------------------------------------------------------------------


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for number in (1, 2, 10):  # natural order: 1, 2, 10 (not 1, 10, 2)
        cv2.imwrite(str(folder / f"img{number}.png"), make_frame(number))
    (folder / "img5.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def test_image_folder_in_natural_order_as_rgb_skipping_unreadable(
    image_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), ImageFolderSource(image_dir) as source:
        frames = list(source.frames())
    assert [encoded_index(f.image) for f in frames] == [1, 2, 10]
    assert [f.index for f in frames] == [0, 1, 2]
    for frame in frames:
        assert_red_left_half(frame.image)
    assert any("img5.jpg" in record.getMessage() for record in caplog.records)


def test_image_glob_and_loop(image_dir: Path) -> None:
    with ImageFolderSource(str(image_dir / "img1*.png"), loop=True) as source:
        frames = [source.read(1.0) for _ in range(5)]
    assert [encoded_index(f.image) for f in frames] == [1, 10, 1, 10, 1]


def test_empty_image_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no image files"):
        ImageFolderSource(tmp_path).open()


# --- the latest-frame reader -----------------------------------------------------------------


def test_reader_hands_out_only_the_newest_frame(video_file: Path) -> None:
    reader = LatestFrameReader(lambda: OpenCVSource(video_file, loop=True), name="file")
    with reader:
        seen = []
        for _ in range(8):
            frame = reader.latest(timeout=5.0)
            assert frame is not None
            seen.append(frame.index)
            time.sleep(0.05)  # a slow pipeline
        stats = reader.stats()
    assert seen == sorted(set(seen)), "indices must grow and never repeat"
    assert stats.frames_skipped > 0
    assert stats.frames_delivered == len(seen)
    assert stats.frames_read >= stats.frames_delivered + stats.frames_skipped
    assert not reader.running


def test_a_lossless_reader_hands_out_every_frame_to_a_slow_pipeline(video_file: Path) -> None:
    reader = LatestFrameReader(lambda: OpenCVSource(video_file), name="file", lossless=True)
    with reader:
        seen = []
        while (frame := reader.latest(timeout=5.0)) is not None:
            seen.append(frame.index)
            time.sleep(0.01)  # a slow pipeline
        stats = reader.stats()
    assert seen == list(range(FRAMES))
    assert stats.frames_skipped == 0 and stats.ended


def test_reader_ends_with_a_finite_file(video_file: Path) -> None:
    with LatestFrameReader(lambda: OpenCVSource(video_file)) as reader:
        assert wait_until(lambda: reader.ended)
        reader.latest(timeout=0.1)  # the last frame may still be waiting
        assert reader.latest(timeout=0.1) is None
        stats = reader.stats()
        assert stats.ended and not stats.connected
        assert stats.frames_read == FRAMES and stats.reconnects == 0
        assert wait_until(lambda: not reader.running, 2.0)


def test_reader_survives_a_file_that_disappears_and_comes_back(
    video_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "clip.avi"
    path.write_bytes(video_file.read_bytes())
    away = tmp_path / "clip.avi.moved"
    reader = LatestFrameReader(
        lambda: OpenCVSource(path, loop=True), backoff_initial=0.05, backoff_max=0.2
    )
    with reader:
        assert reader.latest(timeout=5.0) is not None
        path.rename(away)
        # The open file plays on to its end; the rewind then finds it gone.
        assert wait_until(lambda: reader.stats().reconnects >= 3)
        stats = reader.stats()
        assert "not found" in (stats.last_error or "")
        assert reader.running
        reader.latest(timeout=0.01)  # drop the frame left from before
        assert reader.latest(timeout=0.3) is None

        away.rename(path)
        frame = reader.latest(timeout=5.0)
        assert frame is not None
        assert reader.latest(timeout=5.0) is not None
        assert reader.stats().connected


@pytest.mark.parametrize(
    "url",
    ["rtsp://127.0.0.1:{port}/stream", "http://127.0.0.1:{port}/video.mjpg"],
    ids=["rtsp", "http"],
)
def test_reader_keeps_trying_a_url_that_refuses(url: str) -> None:
    url = url.format(port=closed_port())
    reader = LatestFrameReader(
        lambda: OpenCVSource(url, open_timeout=1.0, read_timeout=1.0),
        backoff_initial=0.05,
        backoff_max=0.4,
    )
    reader.start()
    assert reader.latest(timeout=1.0) is None
    assert wait_until(lambda: reader.stats().reconnects >= 3)
    stats = reader.stats()
    assert reader.running
    assert not stats.connected
    assert f"could not open stream {url}" in (stats.last_error or "")
    # Back-off: the delay has grown, so far fewer attempts than one per 0.05 s.
    assert stats.retry_in_s > reader.backoff_initial
    assert stats.reconnects < 15

    start = time.monotonic()
    assert reader.stop()
    assert time.monotonic() - start < 3.0
    assert not reader.running


class SilentSource(FrameSource):
    """Opens fine, then never delivers a frame (a camera that hangs); honours read timeouts."""

    def __init__(self, opened: list[SilentSource]) -> None:
        self.closed = False
        opened.append(self)

    def open(self) -> None:
        pass

    def read(self, timeout: float) -> Frame | None:
        time.sleep(timeout)
        return None

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        return "silent test source"


def test_reader_reopens_a_stalled_source() -> None:
    opened: list[SilentSource] = []
    reader = LatestFrameReader(
        lambda: SilentSource(opened), stall_timeout=0.3, backoff_initial=0.05, poll_interval=0.1
    )
    with reader:
        assert wait_until(lambda: len(opened) >= 2)
        stats = reader.stats()
        assert stats.stalled
        assert "no frame for 0.3 s" in (stats.last_error or "")
        assert opened[0].closed
        assert reader.latest(timeout=0.05) is None


class StuckSource(SilentSource):
    """Blocks in read regardless of the timeout, like a VideoCapture that hangs."""

    def __init__(self, opened: list[SilentSource], release: threading.Event) -> None:
        super().__init__(opened)
        self.release = release

    def read(self, timeout: float) -> Frame | None:
        self.release.wait(10.0)
        return None


def test_stop_returns_even_while_the_source_is_stuck() -> None:
    opened: list[SilentSource] = []
    release = threading.Event()
    reader = LatestFrameReader(lambda: StuckSource(opened, release), stall_timeout=0.2)
    reader.start()
    assert wait_until(lambda: len(opened) == 1)
    time.sleep(0.3)
    assert reader.stats().stalled  # visible even though the thread cannot notice
    start = time.monotonic()
    assert reader.stop(timeout=0.5) is False
    assert time.monotonic() - start < 3.0
    release.set()
    assert wait_until(lambda: not reader.running, 2.0)
    assert opened[0].closed  # the thread closed its source on the way out
    assert len(opened) == 1


def test_clean_shutdown_closes_the_source(video_file: Path) -> None:
    opened: list[OpenCVSource] = []

    def factory() -> OpenCVSource:
        opened.append(OpenCVSource(video_file, loop=True, realtime=True))
        return opened[-1]

    reader = LatestFrameReader(factory)
    reader.start()
    assert reader.latest(timeout=5.0) is not None
    start = time.monotonic()
    assert reader.stop() is True
    assert time.monotonic() - start < 3.0
    assert not reader.running
    assert opened[0]._cap is None
    assert reader.latest(timeout=1.0) is None  # returns at once once stopped
    assert not reader.stats().connected


# --- the Pi camera, against a stand-in with picamera2's API --------------------------------


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch):
    fake_picamera2.reset()
    monkeypatch.setitem(sys.modules, "picamera2", fake_picamera2)
    return fake_picamera2


def test_picamera_configures_rgb888_and_delivers_rgb(picamera2) -> None:
    picamera2.scene_rgb = (200, 40, 10)
    source = PiCameraSource(640, 480, fps=25)
    with source:
        frame = source.read(1.0)
        camera = picamera2.instances[0]
        config = camera.camera_config
        assert config["main"]["size"] == (640, 480)
        assert config["main"]["format"] == "RGB888"
        assert config["controls"] == {"FrameDurationLimits": (40000, 40000)}
        assert camera.started
    assert frame is not None and frame.index == 0
    assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
    assert tuple(frame.image[0, 0]) == (200, 40, 10)  # [B, G, R] in, RGB out
    assert frame.image.flags["C_CONTIGUOUS"]
    assert camera.calls[-2:] == ["stop", "close"] and not camera.is_open


def test_picamera_times_out_instead_of_blocking(picamera2) -> None:
    with PiCameraSource(320, 240) as source:
        picamera2.stalled = True
        start = time.monotonic()
        assert source.read(0.1) is None
        assert time.monotonic() - start < 2.0
    assert picamera2.instances[0].calls[-1] == "close"


def test_picamera_stall_is_reopened_by_the_reader(picamera2) -> None:
    reader = LatestFrameReader(
        lambda: PiCameraSource(320, 240), stall_timeout=0.3, backoff_initial=0.05, poll_interval=0.1
    )
    with reader:
        assert reader.latest(timeout=2.0) is not None
        picamera2.stalled = True
        assert wait_until(lambda: len(picamera2.instances) >= 2)
        picamera2.stalled = False
        assert wait_until(lambda: reader.latest(timeout=0.5) is not None)
        assert reader.stats().reconnects >= 1
    assert not any(camera.is_open for camera in picamera2.instances)


def test_picamera_missing_camera_is_a_source_error(picamera2) -> None:
    with pytest.raises(SourceError, match="picamera:1"):
        PiCameraSource(camera_num=1).open()


def test_picamera_without_the_library_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes the import fail
    with pytest.raises(SourceError) as error:
        PiCameraSource().open()
    message = str(error.value)
    assert "apt install python3-picamera2" in message
    assert "--system-site-packages" in message


# --- open_source -----------------------------------------------------------------------------


def test_open_source_picks_the_class(video_file: Path, image_dir: Path) -> None:
    camera = open_source("picamera")
    assert isinstance(camera, PiCameraSource) and camera.camera_num == 0
    camera = open_source("picamera:1", width=640, height=480)
    assert isinstance(camera, PiCameraSource) and camera.camera_num == 1
    assert (camera.width, camera.height) == (640, 480)
    for spec, kind in [
        (0, "device"),
        ("2", "device"),
        ("/dev/video0", "device"),
        ("rtsp://user:pw@cam/stream", "url"),
        ("http://cam/video.mjpg", "url"),
        ("https://cam/video.mjpg", "url"),
        (str(video_file), "file"),
        (video_file, "file"),
        ("missing.mp4", "file"),
    ]:
        source = open_source(spec)
        assert isinstance(source, OpenCVSource) and source.kind == kind, spec
    for spec in [image_dir, str(image_dir / "*.png"), str(image_dir / "img1.png")]:
        assert isinstance(open_source(spec), ImageFolderSource), spec
    with open_source(str(image_dir / "img2.png")) as still:
        assert encoded_index(still.read(1.0).image) == 2
    assert open_source(str(video_file), loop=True).loop


def test_the_package_names_every_export_and_loads_none_up_front():
    import subprocess
    import sys

    import edge_agent.sources as sources

    for name in sources.__all__:
        assert getattr(sources, name).__name__ == name
    # Reading the configuration goes through sources.values, which must not pull OpenCV in.
    code = "import sys, edge_agent.config; sys.exit('cv2' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("picamera", "picamera", 0),
        ("PiCamera:1", "picamera", 1),
        (0, "device", 0),
        ("2", "device", "2"),
        ("/dev/video3", "device", "/dev/video3"),
        ("rtsp://cam.local/stream", "stream", "rtsp://cam.local/stream"),
        ("HTTPS://cam.local/mjpeg", "stream", "HTTPS://cam.local/mjpeg"),
        ("frames/*.jpg", "images", "frames/*.jpg"),
        ("still.PNG", "images", "still.PNG"),
        ("footage.mp4", "video", "footage.mp4"),
        ("picamera:x", "video", "picamera:x"),
    ],
)
def test_parse_spec_names_the_kind_of_source(spec, kind, target):
    from edge_agent.sources.spec import parse_spec

    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.target) == (kind, target)
    assert parsed.is_camera == (kind in ("picamera", "device"))


def test_parse_spec_refuses_an_empty_spec():
    from edge_agent.sources.spec import parse_spec

    with pytest.raises(ValueError, match="empty source spec"):
        parse_spec("")
