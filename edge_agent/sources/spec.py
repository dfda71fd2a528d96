"""What a source spec names: the one place that reads `source.spec`.

    parse_spec("picamera:1")        # SourceSpec(kind="picamera", target=1)
    parse_spec("/dev/video0")       # SourceSpec(kind="device", target="/dev/video0")
    parse_spec("rtsp://cam/stream") # SourceSpec(kind="stream", ...)
    parse_spec("frames/*.jpg")      # SourceSpec(kind="images", ...)
    parse_spec("footage.mp4")       # SourceSpec(kind="video", ...)

Standard library only: `open_source`, the daemon's options and `edge-agent doctor` all ask
here, without loading OpenCV or picamera2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from edge_agent.sources.values import SourceSpec

# What an OpenCV VideoCapture target is.
TargetKind = Literal["device", "url", "file"]

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}
)
_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


def is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def classify_target(target: int | str | os.PathLike[str]) -> TargetKind:
    """Whether a VideoCapture target is a device (index, "3" or /dev/videoN), a URL or a file."""
    if isinstance(target, int):
        return "device"
    text = os.fspath(target)
    if text.isdigit() or _DEVICE_PATH.match(text):
        return "device"
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() in URL_SCHEMES:
        return "url"
    return "file"


def parse_spec(spec: str | int | os.PathLike[str]) -> SourceSpec:
    """The kind of source a spec names, and what to open; ValueError for an empty spec."""
    if isinstance(spec, int):
        return SourceSpec("device", spec)
    text = os.fspath(spec)
    if not text:
        raise ValueError("empty source spec")
    name, sep, number = text.partition(":")
    if name.lower() == "picamera" and (not sep or number.isdigit()):
        return SourceSpec("picamera", int(number) if number else 0)
    target = classify_target(text)
    if target == "device":
        return SourceSpec("device", text)
    if target == "url":
        return SourceSpec("stream", text)
    path = Path(text)
    if path.is_dir() or is_glob(text) or path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec("images", text)
    return SourceSpec("video", text)
