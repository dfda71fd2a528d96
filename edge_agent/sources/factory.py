"""Build the configured source: which constructor a spec needs, and the options its kind takes."""

from __future__ import annotations

import os
import time
from typing import Any

from edge_agent.sources.base import EndOfStream, FrameSource, SourceError, VideoClock
from edge_agent.sources.images import ImageFolderSource
from edge_agent.sources.opencv import OpenCVSource
from edge_agent.sources.picamera import PiCameraSource
from edge_agent.sources.reader import LatestFrameReader
from edge_agent.sources.spec import parse_spec
from edge_agent.sources.values import SourceSettings


def open_source(spec: str | int | os.PathLike[str], **options: Any) -> FrameSource:
    """Build (not open) the source a spec names; options go to that source's constructor."""
    parsed = parse_spec(spec)
    if parsed.kind == "picamera":
        return PiCameraSource(camera_num=int(parsed.target), **options)
    if parsed.kind == "images":
        return ImageFolderSource(str(parsed.target), **options)
    return OpenCVSource(parsed.target, **options)


def open_options(settings: SourceSettings) -> dict[str, Any]:
    """Keyword options for `open_source(settings.spec, **options)`: only those the kind of
    source takes (a camera gets no `loop`, a file no `width`)."""
    kind = parse_spec(settings.spec).kind
    fps = {} if settings.fps is None else {"fps": settings.fps}
    sizes = {"width": settings.width, "height": settings.height}
    if kind == "picamera":
        return {k: v for k, v in sizes.items() if v is not None} | fps
    if kind in ("device", "stream"):
        return sizes | fps
    if kind == "images":
        return {"loop": settings.loop} | fps
    return {"loop": settings.loop, "realtime": settings.realtime} | fps


def reader_options(settings: SourceSettings) -> dict[str, Any]:
    """Keyword options for `LatestFrameReader(factory, **options)`.

    A video file read as fast as the pipeline goes is read losslessly: every frame is
    processed, none replaced by a newer one (that is for cameras, and real-time files).
    """
    lossless = parse_spec(settings.spec).kind == "video" and not settings.realtime
    return {
        "stall_timeout": settings.stall_timeout_s,
        "backoff_max": settings.reconnect_backoff_max_s,
        "lossless": lossless,
    }


def reader_for(settings: SourceSettings) -> LatestFrameReader:
    """The configured source behind a latest-frame reader (not started)."""
    options = open_options(settings)
    if parse_spec(settings.spec).kind == "video" and not settings.realtime:
        # Every source built for the file (after a failure) goes on with the same clock.
        options["clock"] = VideoClock()
    return LatestFrameReader(
        lambda: open_source(settings.spec, **options), **reader_options(settings)
    )


def check_source_plays(settings: SourceSettings, timeout_s: float = 5.0) -> None:
    """Open the source, read one frame and close it; SourceError saying why when it cannot.

    For commands on a file (the demo, an evaluation): they stop at once on a file that cannot
    play, where `run` keeps retrying a camera that may come back.
    """
    source = open_source(settings.spec, **open_options(settings))
    deadline = time.monotonic() + timeout_s
    try:
        source.open()
        while source.read(timeout=0.5) is None:
            if time.monotonic() > deadline:
                raise SourceError(f"{source.describe()}: no frame within {timeout_s:g} s")
    except EndOfStream:
        raise SourceError(f"{source.describe()} has no frames (empty or damaged)") from None
    finally:
        source.close()
