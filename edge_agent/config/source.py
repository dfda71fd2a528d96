"""The `source` section: the camera, stream or file frames come from."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from edge_agent.config.base import ConfigModel, setting


class SourceConfig(ConfigModel):
    spec: str | int = setting(
        "samples/demo.mp4",
        "Source",
        "Where frames come from: `picamera` or `picamera:N` (Pi camera N), a device index or"
        " `/dev/videoN` (USB camera), an rtsp:// or http(s):// URL (IP camera), a video file, or"
        " an image folder or glob (`frames/*.jpg`). Relative paths are relative to the working"
        " directory.",
    )
    width: int | None = setting(
        None,
        "Width",
        "Frame width in pixels to ask a camera for (it may pick its nearest mode). null: the"
        " camera's default (1280 for the Pi camera). Ignored for files and folders.",
        gt=0,
    )
    height: int | None = setting(
        None,
        "Height",
        "Frame height in pixels to ask a camera for. null: the camera's default (720 for the Pi"
        " camera). Ignored for files and folders.",
        gt=0,
    )
    fps: float | None = setting(
        None,
        "Frame rate",
        "Frames per second to ask a camera for; for a video file the rate `realtime` plays it"
        " at, for an image folder the rate it is played at. null: the source's own rate.",
        gt=0,
    )
    loop: bool = setting(
        True,
        "Loop",
        "Start a video file or image folder again at its end instead of stopping. Ignored for"
        " cameras and streams.",
    )
    realtime: bool = setting(
        True,
        "Real time",
        "Play a video file at its own frame rate, as a camera would deliver it; false reads every"
        " frame as fast as the pipeline goes, timed by the file's own clock (frame n at n / fps"
        " after the start), so counts, dwell and report windows are in video time. Ignored for"
        " cameras, streams and image folders.",
    )
    horizontal_fov_deg: float = setting(
        70.0,
        "Horizontal field of view",
        "The camera lens's horizontal field of view in degrees, across the whole frame width:"
        " `edge-agent aim` turns face sizes into distances with it. Typical: Raspberry Pi Camera"
        " Module 3 66, Camera Module 3 Wide 102, usual USB webcams 60-78 (a webcam sold as 78"
        " degrees diagonal is about 70 across a 16:9 picture). Nothing else uses it.",
        ge=20,
        le=180,
    )
    stall_timeout_s: float = setting(
        5.0,
        "Stall timeout",
        "Seconds without a new frame after which the source counts as stalled and is reopened.",
        gt=0,
    )
    reconnect_backoff_max_s: float = setting(
        5.0,
        "Longest reconnect wait",
        "Upper bound in seconds of the reconnect back-off, which starts at 0.5 s and doubles"
        " after each failed attempt; a camera that comes back is picked up within about this"
        " long.",
        ge=0.5,
    )

    @field_validator("spec", mode="before")
    @classmethod
    def _check_spec(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(
                "must be text (picamera, /dev/video0, a URL, a file or a folder) or a device index"
            )
        if isinstance(value, int) and value < 0:
            raise ValueError("a device index is 0 or more")
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value
