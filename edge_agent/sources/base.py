"""The one interface every source implements, in the spirit of picamera2: open, read, close.

A source is used from one thread at a time (the reader thread, or an evaluation loop). It
is not opened by its constructor, so a factory can build one cheaply and a failed open can be
retried by building another.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from edge_agent.sources.values import Frame


def quiet_video_decoder_logs() -> None:
    """Keep FFmpeg's and OpenCV's own messages off the terminal and the journal.

    On a damaged file FFmpeg prints a line per broken macroblock (about 80 a second), and
    OpenCV a warning per file it cannot open or decode; a source says what went wrong once,
    in its own error or warning. Both are read when the first capture opens, so this runs when
    this module is imported, before any source exists. A level already set in the
    environment (OPENCV_FFMPEG_LOGLEVEL, OPENCV_LOG_LEVEL: for debugging a camera) wins.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


quiet_video_decoder_logs()


class SourceError(RuntimeError):
    """The source cannot be opened or has broken; the message names the source."""


class EndOfStream(SourceError):
    """A finite source (a file or folder without loop) has no more frames."""


class FrameSource(ABC):
    """A camera, stream, video file or image folder that produces RGB frames."""

    _index = 0  # the number the next frame gets

    def _stamp(self, rgb: np.ndarray) -> Frame:
        """Wrap an RGB image as this source's next frame, stamped now."""
        frame = Frame(self._index, time.monotonic(), time.time(), rgb)
        self._index += 1
        return frame

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or file. Raises SourceError naming the source on failure."""

    @abstractmethod
    def read(self, timeout: float) -> Frame | None:
        """The next frame; None when none came within `timeout` seconds (where the backend
        can time out at all). Raises EndOfStream at the end of a finite source and
        SourceError when the source broke; after either, close it and open a new one."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call twice, or without a successful open."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description for logs, without secrets (URL passwords are masked)."""

    def frames(self, timeout: float = 1.0) -> Iterator[Frame]:
        """Every frame until the source ends: for evaluation and tools, not the live daemon
        (which uses LatestFrameReader so it never falls behind)."""
        while True:
            try:
                frame = self.read(timeout)
            except EndOfStream:
                return
            if frame is not None:
                yield frame

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, so it can go into logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous RGB uint8 HxWx3 copy of a BGR (OpenCV, picamera2 "RGB888"), BGRA or grey
    image."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class VideoClock:
    """The time a video file tells, for a file read faster (or slower) than real time: its
    n-th frame comes 1/fps after the one before, whatever the wall clock says, so the tracker
    and the counting see the people move and stay as they did in the file. Counted from the
    moment of the first frame; one clock is shared by every source a reader builds for the
    file (reopened after a failure, rewound to loop), so it never runs backwards."""

    def __init__(self) -> None:
        self._origin: tuple[float, float] | None = None  # monotonic and wall time at frame 0
        self._elapsed_s = 0.0

    def stamp(self, index: int, rgb: np.ndarray, fps: float) -> Frame:
        if self._origin is None:
            self._origin = (time.monotonic(), time.time())
        monotonic, wall = self._origin
        frame = Frame(index, monotonic + self._elapsed_s, wall + self._elapsed_s, rgb)
        self._elapsed_s += 1.0 / fps
        return frame


class Pacer:
    """Spaces frames `1 / fps` apart in real time, for playing a file as if it were live.

    It never bursts to catch up: after falling more than a second behind (a slow consumer, a
    suspended process) it starts counting again from now.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval = 1.0 / fps
        self._due: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._due is None or now - self._due > 1.0:
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        self._due += self.interval
