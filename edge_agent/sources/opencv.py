"""OpenCV VideoCapture as a source: a V4L2 device, an RTSP/HTTP stream, or a video file.

Devices and streams are live: a failed read means the device or stream is gone, and the
caller (LatestFrameReader) reopens with back-off. Files are finite unless `loop` is set, and
are read as fast as possible (batch processing, benchmarks) unless `realtime` paces them to
their own frame rate (a stand-in for a camera in demos). Read as fast as possible, a file's
frames are timed by its own clock (`VideoClock`), not by when they were decoded.

A looping file that gives no frame at all in a pass (empty, or replaced by an empty one) is a
broken source, like an unplugged camera: the reader retries it with back-off, and the daemon
reports the source down. A file that ends early against its own frame count is reported once
as damaged (FFmpeg's own messages are silenced, see `base.quiet_video_decoder_logs`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from edge_agent.sources.base import (
    EndOfStream,
    FrameSource,
    Pacer,
    SourceError,
    VideoClock,
    redact_url,
    to_rgb,
)
from edge_agent.sources.spec import classify_target
from edge_agent.sources.values import Frame

log = logging.getLogger(__name__)

# Used when a file reports no usable frame rate and none was given.
DEFAULT_FILE_FPS = 30.0


class OpenCVSource(FrameSource):
    """A device index or /dev/videoN, an rtsp:// or http(s):// URL, or a video file.

    width, height and fps are requests to a device (it may choose the nearest mode it has);
    for a file, fps overrides the rate used by `realtime` pacing. `loop` and `realtime` apply
    to files only. `open_timeout` and `read_timeout` bound how long a stream may block.
    """

    def __init__(
        self,
        target: int | str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        loop: bool = False,
        realtime: bool = False,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        clock: VideoClock | None = None,
    ) -> None:
        """`clock`: for a file read as fast as possible, the clock its frames are timed by
        (a reader shares one between the sources it builds for one file)."""
        self.kind = classify_target(target)
        if self.kind == "device":
            self.target: int | str = int(target) if str(target).isdigit() else os.fspath(target)
        else:
            self.target = os.fspath(target)
        if self.kind != "file" and (loop or realtime):
            raise ValueError(f"loop and realtime apply to video files only, not {self.describe()}")
        if self.kind != "device" and (width is not None or height is not None):
            raise ValueError(
                f"width and height can only be requested from a device, not {self.describe()}"
            )
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.width = width
        self.height = height
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._pass_frames = 0  # frames read since the file was (re)opened
        self._pacer: Pacer | None = None
        self._clock: VideoClock | None = None
        if self.kind == "file" and not realtime:
            self._clock = clock or VideoClock()
        self._file_fps = DEFAULT_FILE_FPS
        self._damage_reported = False

    def describe(self) -> str:
        if self.kind == "device":
            return f"video device {self.target}"
        if self.kind == "url":
            return f"stream {redact_url(str(self.target))}"
        return f"video file {self.target}"

    def open(self) -> None:
        if self._cap is not None:
            return
        self._cap = self._open_capture()
        self._pass_frames = 0
        if self.kind == "file":
            reported = self._cap.get(cv2.CAP_PROP_FPS)
            self._file_fps = self.fps or (reported if 0 < reported < 1000 else DEFAULT_FILE_FPS)
            if self.realtime:
                self._pacer = Pacer(self._file_fps)
        log.info("opened %s", self._summary())

    def _open_capture(self) -> cv2.VideoCapture:
        if self.kind == "file" and not Path(self.target).is_file():
            raise SourceError(f"video file not found: {self.target}")
        if self.kind == "device":
            # V4L2 explicitly: on Linux CAP_ANY may try GStreamer first and be slow to fail.
            api = getattr(cv2, "CAP_V4L2", cv2.CAP_ANY)
            cap = cv2.VideoCapture(self.target, api)
        elif self.kind == "url":
            # Both timeouts are honoured by the FFmpeg backend (OpenCV >= 4.6); without them a
            # dead camera can block for FFmpeg's default of 30 s or more.
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout * 1000),
            ]
            cap = cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG)
            if not cap.isOpened():  # an OpenCV build without FFmpeg: let it choose
                cap = cv2.VideoCapture(str(self.target), cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            if self.kind == "file":
                raise SourceError(
                    f"could not open {self.describe()}: not a video this OpenCV can decode"
                    " (empty, damaged, or another kind of file)"
                )
            raise SourceError(f"could not open {self.describe()}")
        if self.kind == "device":
            self._request_mode(cap)
        return cap

    def _request_mode(self, cap: cv2.VideoCapture) -> None:
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
            (cv2.CAP_PROP_FPS, self.fps),
        ):
            if value is not None and not cap.set(prop, float(value)):
                log.warning("%s did not accept property %d = %s", self.describe(), prop, value)

    def _summary(self) -> str:
        cap = self._cap
        if cap is None:
            return self.describe()
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = cap.get(cv2.CAP_PROP_FPS)
        return f"{self.describe()} ({width}x{height} at {fps:.3g} fps, {cap.getBackendName()})"

    def read(self, timeout: float) -> Frame | None:
        # `timeout` is not used: VideoCapture.read() cannot be interrupted. A stream is bounded
        # by read_timeout, a V4L2 device by the driver's own select() timeout.
        cap = self._cap
        if cap is None:
            raise SourceError(f"{self.describe()} is not open")
        ok, image = cap.read()
        if not ok or image is None:
            if self.kind != "file":
                raise SourceError(f"{self.describe()} delivered no frame (disconnected?)")
            self._report_damage(cap)
            if self.loop and self._pass_frames == 0:
                # Rewinding would spin; a file that may be replaced again is retried instead.
                raise SourceError(f"{self.describe()} has no frames (empty or damaged)")
            if not self.loop:
                raise EndOfStream(f"end of {self.describe()} after {self._index} frames")
            ok, image = self._rewind()
            if not ok or image is None:
                raise SourceError(f"{self.describe()} gave no frame after rewinding")
        self._pass_frames += 1
        if self._pacer is not None:
            self._pacer.wait()
        if self._clock is not None:
            frame = self._clock.stamp(self._index, to_rgb(image), self._file_fps)
            self._index += 1
            return frame
        return self._stamp(to_rgb(image))

    def _report_damage(self, cap: cv2.VideoCapture) -> None:
        """Once per source: the file ended well before the frame count its header gives."""
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        # The count is an estimate in some containers: only a clear shortfall is damage.
        if self._damage_reported or expected <= 0 or self._pass_frames >= 0.9 * expected:
            return
        self._damage_reported = True
        log.warning(
            "%s: only %d of its %d frames could be decoded; the file looks damaged",
            self.describe(),
            self._pass_frames,
            expected,
        )

    def _rewind(self) -> tuple[bool, np.ndarray | None]:
        # Reopening is the one rewind that works for every container (seeking does not), and
        # it notices when the file was replaced or removed in the meantime.
        self.close()
        self._cap = self._open_capture()
        self._pass_frames = 0
        return self._cap.read()

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
