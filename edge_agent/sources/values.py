"""The plain values of the sources: what they take (settings, a parsed spec) and hand on
(frames, reader statistics). Images are RGB uint8, HxWx3, like everywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

# picamera: a Pi camera through picamera2; device: a V4L2 camera (index or /dev/videoN);
# stream: an rtsp:// or http(s):// URL; images: a folder, glob or image file; video: a file.
SourceKind = Literal["picamera", "device", "stream", "images", "video"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What `source.spec` names (`edge_agent.sources.parse_spec`)."""

    kind: SourceKind
    target: str | int  # the camera number, device, URL or path to open

    @property
    def is_camera(self) -> bool:
        return self.kind in ("picamera", "device")

    @property
    def is_file(self) -> bool:
        return self.kind in ("images", "video")


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """The configured source; each kind takes the options that apply to it."""

    spec: str | int = "samples/demo.mp4"
    width: int | None = None  # asked of a camera; None: its default
    height: int | None = None
    fps: float | None = None  # asked of a camera; a file's or folder's playing rate
    loop: bool = True  # files and folders: start again at the end
    realtime: bool = True  # video files: play at their own rate, like a camera
    # The lens's, across the frame width: for turning face sizes into distances (`edge-agent
    # aim`); no source uses it.
    horizontal_fov_deg: float = 70.0
    stall_timeout_s: float = 5.0
    reconnect_backoff_max_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image.

    `index` is a sequence number that only ever grows for the producer that hands the frame
    out: a source counts its own reads; `LatestFrameReader` renumbers across reconnects so the
    pipeline never sees the count start again. Gaps mean frames were skipped.
    """

    index: int
    monotonic: float  # time.monotonic() at capture: for durations, immune to clock changes
    wall_time: float  # time.time() at capture: for reports
    image: np.ndarray  # RGB uint8, HxWx3

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class SourceStats:
    """What a `LatestFrameReader` has seen so far, for logs, health checks and telemetry."""

    frames_read: int  # frames the source produced
    frames_delivered: int  # frames handed to the pipeline by latest()
    frames_skipped: int  # frames replaced by a newer one before anybody took them
    reconnects: int  # attempts to open the source again after it failed, stalled or vanished
    last_error: str | None  # the most recent failure, None before the first one
    stalled: bool  # open, but no frame for longer than the stall timeout
    connected: bool  # the source is open now
    ended: bool = False  # a finite source (file without loop) reached its end
    retry_in_s: float = 0.0  # the back-off delay before the next reconnect attempt
