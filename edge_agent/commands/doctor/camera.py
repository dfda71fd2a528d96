"""The camera check: the configured source opens and delivers frames; their size and rate.

The frames are read on a thread of their own, so that a driver stuck in read() costs a bounded
wait and not the whole command. Only the frame size is kept: the doctor never holds on to an
image.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.commands.doctor.base import SERVICE, CheckResult, DoctorRun, Status, service_active

if TYPE_CHECKING:
    from edge_agent.config import Config

# The camera passes once this many frames arrived; the rate is then measured over up to
# FPS_WINDOW_S more (a rate from 5 frames of a 30 fps camera is mostly noise).
MIN_CAMERA_FRAMES = 5
FPS_WINDOW_S = 1.0


@dataclass
class _CameraOutcome:
    """Written by the reading thread, read by the doctor once the thread is done or late."""

    described: str = ""
    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    size: tuple[int, int] | None = None
    ended: bool = False  # a file without loop reached its end
    error: str | None = None


def _read_camera(config: Config, seconds: float, outcome: _CameraOutcome) -> None:
    from edge_agent.sources.base import EndOfStream
    from edge_agent.sources.factory import open_options, open_source

    deadline = time.monotonic() + seconds
    settings = config.source_settings()
    try:
        source = open_source(settings.spec, **open_options(settings))
    except Exception as error:  # SourceError, bad options, picamera2 not importable...
        outcome.error = _error_text(error)
        return
    outcome.described = source.describe()
    try:
        source.open()
        while time.monotonic() < deadline:
            frame = source.read(timeout=max(0.1, deadline - time.monotonic()))
            if frame is None:
                continue
            now = time.monotonic()
            # Only the size is kept: the doctor never holds on to, or writes, an image.
            outcome.size = (frame.width, frame.height)
            outcome.frames += 1
            if outcome.first_at is None:
                outcome.first_at = now
            outcome.last_at = now
            if outcome.frames >= MIN_CAMERA_FRAMES and now - outcome.first_at >= FPS_WINDOW_S:
                return
    except EndOfStream:
        outcome.ended = True
    except Exception as error:
        outcome.error = _error_text(error)
    finally:
        source.close()


def _error_text(error: Exception) -> str:
    # SourceError and ValueError messages name the source already; anything else (an
    # ImportError from picamera2, an OpenCV error) needs its type to make sense.
    if isinstance(error, RuntimeError | ValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _source_kind(spec: str | int) -> str:
    from edge_agent.sources.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.is_camera:
        return "camera"
    return "url" if parsed.kind == "stream" else "file"


def check_camera(doctor: DoctorRun) -> CheckResult:
    from edge_agent.sources.base import redact_url

    assert doctor.config is not None
    spec = doctor.config.source.spec
    outcome = _CameraOutcome()
    reader = threading.Thread(
        target=_read_camera,
        args=(doctor.config, doctor.camera_seconds, outcome),
        name="doctor-camera",
        daemon=True,  # a driver stuck in read() must not keep the command from exiting
    )
    reader.start()
    # Opening a USB camera or a stream can take seconds of its own before the first read.
    reader.join(doctor.camera_seconds + 5.0)
    # describe() masks a password in a stream URL; so must the fallback.
    what = outcome.described or f"source {redact_url(str(spec))}"
    if outcome.frames >= MIN_CAMERA_FRAMES or (outcome.ended and outcome.frames):
        return CheckResult("camera", Status.PASS, _frames_detail(what, outcome))
    if outcome.frames:
        return CheckResult(
            "camera",
            Status.WARN,
            f"{_frames_detail(what, outcome)}: fewer than {MIN_CAMERA_FRAMES} frames in"
            f" {doctor.camera_seconds:g} s",
            "check the light (a dark scene slows cameras down), the cable, and source.fps",
        )
    if outcome.error:
        reason = outcome.error
    elif outcome.ended:
        reason = f"{what} has no frames"
    elif reader.is_alive():
        reason = f"{what}: still no frame after {doctor.camera_seconds:g} s (the driver hangs)"
    else:
        reason = f"{what}: no frame within {doctor.camera_seconds:g} s"
    kind = _source_kind(spec)
    if kind != "file" and service_active():
        return CheckResult(
            "camera",
            Status.WARN,
            f"{reason}; {SERVICE} is running and probably holds the camera",
            "sudo systemctl stop edge-agent, run edge-agent doctor again, then"
            " sudo systemctl start edge-agent",
        )
    return CheckResult("camera", Status.FAIL, reason, _camera_fix(spec, kind))


def _frames_detail(what: str, outcome: _CameraOutcome) -> str:
    width, height = outcome.size or (0, 0)
    detail = f"{what}: {width}x{height}, {outcome.frames} frames"
    first, last = outcome.first_at, outcome.last_at
    if outcome.ended:
        # A few frames of a file say nothing about a rate.
        return f"{detail} (end of the file)"
    if first is not None and last is not None and last > first:
        detail += f" at {(outcome.frames - 1) / (last - first):.1f} fps"
    return detail


def _camera_fix(spec: str | int, kind: str) -> str:
    if kind == "camera" and str(spec).lower().startswith("picamera"):
        return (
            "check the ribbon cable and that `rpicam-hello --list-cameras` lists the camera;"
            " picamera2 must be importable (python3-picamera2, venv with"
            " --system-site-packages)"
        )
    if kind == "camera":
        return (
            "plug the camera in, check `v4l2-ctl --list-devices` for its /dev/videoN, set"
            " source.spec to it; the service user needs the video group"
        )
    if kind == "url":
        return "check the stream URL, the camera's address and login, and the network"
    relative = "" if Path(str(spec)).is_absolute() else " (relative to the working directory)"
    return f"check source.spec{relative}: a video file, an image folder or a glob"
