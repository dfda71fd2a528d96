"""Camera and file sources: frames in, as RGB uint8 HxWx3, newest first.

    source = open_source("picamera", width=1280, height=720)     # or "rtsp://...", "/dev/video0"
    with LatestFrameReader(lambda: open_source(spec)) as reader:
        frame = reader.latest(timeout=1.0)

Spec strings understood by `open_source`:

- "picamera" or "picamera:N": the Pi camera N through picamera2
- an int, "0", or "/dev/videoN": a V4L2 device through OpenCV
- "rtsp://...", "http(s)://..." (and rtmp, udp, tcp, srt): a network stream through OpenCV/FFmpeg
- a directory, a glob ("frames/*.jpg") or a single image file: ImageFolderSource
- anything else: a video file through OpenCV
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge_agent.sources.base import EndOfStream, FrameSource, SourceError, redact_url
from edge_agent.sources.images import IMAGE_SUFFIXES, ImageFolderSource, is_glob
from edge_agent.sources.opencv import OpenCVSource, classify_target
from edge_agent.sources.picamera import PiCameraSource
from edge_agent.sources.reader import LatestFrameReader
from edge_agent.sources.values import Frame, SourceStats

__all__ = [
    "EndOfStream",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "LatestFrameReader",
    "OpenCVSource",
    "PiCameraSource",
    "SourceError",
    "SourceStats",
    "open_source",
    "redact_url",
]


def open_source(spec: str | int | os.PathLike[str], **options: Any) -> FrameSource:
    """Build (not open) the source a spec names; options go to that source's constructor."""
    if isinstance(spec, int):
        return OpenCVSource(spec, **options)
    text = os.fspath(spec)
    if not text:
        raise ValueError("empty source spec")
    name, sep, number = text.partition(":")
    if name.lower() == "picamera" and (not sep or number.isdigit()):
        return PiCameraSource(camera_num=int(number) if number else 0, **options)
    if classify_target(text) != "file":
        return OpenCVSource(text, **options)
    path = Path(text)
    if path.is_dir() or is_glob(text) or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(text, **options)
    return OpenCVSource(text, **options)
