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

The names below load on first use (PEP 562), so that reading the configuration or
`edge-agent --help` does not load OpenCV or picamera2 through this package.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it
_EXPORTS = {
    "EndOfStream": "edge_agent.sources.base",
    "FrameSource": "edge_agent.sources.base",
    "SourceError": "edge_agent.sources.base",
    "redact_url": "edge_agent.sources.base",
    "ImageFolderSource": "edge_agent.sources.images",
    "OpenCVSource": "edge_agent.sources.opencv",
    "PiCameraSource": "edge_agent.sources.picamera",
    "LatestFrameReader": "edge_agent.sources.reader",
    "parse_spec": "edge_agent.sources.spec",
    "Frame": "edge_agent.sources.values",
    "SourceSettings": "edge_agent.sources.values",
    "SourceSpec": "edge_agent.sources.values",
    "SourceStats": "edge_agent.sources.values",
    "check_source_plays": "edge_agent.sources.factory",
    "open_options": "edge_agent.sources.factory",
    "open_source": "edge_agent.sources.factory",
    "reader_for": "edge_agent.sources.factory",
    "reader_options": "edge_agent.sources.factory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
