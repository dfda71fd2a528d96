"""Aim the camera: see what it sees, each face's size, and the distance that size means.

For the installer, while placing the camera. It reads the configured source (`source.*`), runs
the configured face detection and quality gates (`vision.*`) on the newest frame, and shows,
live:

- the picture (at most 640 px wide) with a box around each face;
- per face: its width in pixels (what `vision.quality.min_face_px` is compared with), whether
  it is counted (found by the detector) and large enough to be classified (age and gender),
  and how far from the camera a face of that width is, for the lens
  (`source.horizontal_fov_deg`) and the frame width;
- the farthest distance at which a face is still large enough to be classified.

By default on a web page on this machine, http://127.0.0.1:8766/ (from a laptop: ssh -L
8766:127.0.0.1:8766 USER@DISPLAY, then the same address); --terminal prints a line a second
instead, without the picture. Stop the daemon first (sudo systemctl stop edge-agent): a camera
serves one program at a time.

Privacy: the page shows the live picture of whoever is in front of the camera, to whoever opens
it; it listens on 127.0.0.1 only unless --host says otherwise. Nothing is stored: frames stay in
memory, the picture goes to the page as a JPEG made in memory, and no frame, crop or image is
written anywhere. It is an installation tool: it stops by itself after --minutes (default 10).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from edge_agent import installed
from edge_agent.vision.values import FACE_WIDTH_M

if TYPE_CHECKING:
    from edge_agent.config import Config
    from edge_agent.sources.reader import LatestFrameReader
    from edge_agent.sources.values import Frame, SourceSettings, SourceStats
    from edge_agent.vision.analyzer import VisionPipeline
    from edge_agent.vision.values import Face

INSTALLED_CONFIG = installed.CONFIG
DEFAULT_PORT = 8766  # the daemon's player page is 8765
# `FaceQuality.width_px` (from the alignment keypoints) is about this share of the width of a
# FACE_WIDTH_M face, the quantity docs/deployment.md's camera tables use: 0.69-0.74 on the test
# portraits, eye distance (63 mm) as the ruler, as scripts/face_size_sweep.py measures it.
WIDTH_PX_SHARE_OF_FACE = 0.7
# So a face whose measured width is w pixels is this many metres wide in w's terms.
MEASURED_FACE_WIDTH_M = FACE_WIDTH_M * WIDTH_PX_SHARE_OF_FACE
# A terminal line a second can still be read (the page's rate is in aim_view.py).
TERMINAL_EVERY_S = 1.0
# How long the main thread waits for a frame at a time, so a signal or the deadline is seen.
POLL_S = 0.25
# The detector's own limit depends on the detector and the share of the frame a face fills, not
# on a pixel count the command could turn into a distance; the guide has it measured.
DETECTOR_LIMIT_NOTE = (
    "Whether a face that far is found (counted) at all is the detector's limit: its smallest"
    " face, as a share of the frame width, is measured in docs/deployment.md (section 6,"
    " camera placement)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"config.yaml with the source and vision settings (default: {INSTALLED_CONFIG} if"
        " it exists, else the built-in defaults)",
    )
    parser.add_argument(
        "--minutes",
        type=_positive_minutes,
        default=10.0,
        help="stop by itself after this many minutes (default 10; fractions work)",
    )
    parser.add_argument(
        "--terminal",
        action="store_true",
        help="print a line a second with the faces instead of serving the page (no picture)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the page (default {DEFAULT_PORT}; 0: any free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the page listens on (default 127.0.0.1: this machine only; another"
        " address shows the camera picture to the network)",
    )


def _positive_minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not math.isfinite(minutes) or minutes <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 minutes, got {text}")
    return minutes


# --- what is shown ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lens:
    """The camera as a pinhole: its horizontal field of view across a frame this wide."""

    hfov_deg: float
    frame_width_px: int

    @property
    def focal_px(self) -> float:
        return (self.frame_width_px / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    def distance_m(self, width_px: float) -> float:
        """How far from the camera a face is whose `quality.width_px` is `width_px`."""
        return MEASURED_FACE_WIDTH_M * self.focal_px / width_px


@dataclass(frozen=True, slots=True)
class FaceRow:
    """One face as the installer sees it; numbered from left to right."""

    number: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
    width_px: float  # `quality.width_px`, the measure `min_face_px` is compared with
    classified: bool  # large enough for an age and gender estimate (no "too_small")
    distance_m: float
    other_reasons: tuple[str, ...]  # why there is no estimate besides the size, if any

    @property
    def counted(self) -> bool:
        return True  # every face the detector finds is tracked and counted


def face_rows(faces: list[Face], lens: Lens) -> list[FaceRow]:
    ordered = sorted(faces, key=lambda face: face.detection.box.x0)
    return [
        FaceRow(
            number=number,
            box=tuple(face.detection.box),  # type: ignore[arg-type]
            width_px=face.quality.width_px,
            classified="too_small" not in face.unknown_reasons,
            distance_m=lens.distance_m(face.quality.width_px),
            other_reasons=tuple(r for r in face.unknown_reasons if r != "too_small"),
        )
        for number, face in enumerate(ordered, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Update:
    """One frame and what was measured on it, for either display."""

    frame: Frame
    rows: list[FaceRow]
    lens: Lens
    min_face_px: float
    source: str  # the source's description (no password)
    remaining_s: float  # until the command stops by itself
    stale_s: float = 0.0  # how old the frame is when no newer one comes; 0 while they do
    source_problem: str | None = None

    @property
    def classified_up_to_m(self) -> float:
        return self.lens.distance_m(self.min_face_px)

    def limits_text(self) -> str:
        return (
            f"Wide enough to classify (age and gender) up to about"
            f" {self.classified_up_to_m:.1f} m: faces"
            f" {self.min_face_px:g} px wide (vision.quality.min_face_px) in a"
            f" {self.lens.frame_width_px} px wide frame through a {self.lens.hfov_deg:g} degree"
            f" lens (source.horizontal_fov_deg). {DETECTOR_LIMIT_NOTE}"
        )

    def to_json(self) -> dict[str, object]:
        """What the page receives, without the picture."""
        return {
            "frame": {
                "index": self.frame.index,
                "width": self.frame.width,
                "height": self.frame.height,
            },
            "faces": [
                {
                    "number": row.number,
                    "box": [round(v, 1) for v in row.box],
                    "width_px": round(row.width_px, 1),
                    "counted": row.counted,
                    "classified": row.classified,
                    "distance_m": round(row.distance_m, 2),
                    "reasons": list(row.other_reasons),
                }
                for row in self.rows
            ],
            "lens": {
                "hfov_deg": self.lens.hfov_deg,
                "focal_px": round(self.lens.focal_px, 1),
            },
            "min_face_px": self.min_face_px,
            "classified_up_to_m": round(self.classified_up_to_m, 2),
            "limits": self.limits_text(),
            "source": self.source,
            "remaining_s": round(self.remaining_s),
            "stale_s": round(self.stale_s, 1),
            "source_problem": self.source_problem,
        }


def terminal_line(update: Update) -> str:
    frame = update.frame
    head = f"{time.strftime('%H:%M:%S')} {frame.width}x{frame.height}"
    if update.stale_s:
        head += f" (no new frame for {update.stale_s:.0f} s: {update.source_problem or 'waiting'})"
        return head
    if not update.rows:
        return f"{head}: no face"
    faces = [
        f"#{row.number} {row.width_px:.0f} px, counted yes,"
        f" classified {'yes' if row.classified else 'no (too small)'}, {row.distance_m:.1f} m"
        + (f", {' '.join(row.other_reasons)}" if row.other_reasons else "")
        for row in update.rows
    ]
    count = f"{len(faces)} face{'s' if len(faces) > 1 else ''}"
    return f"{head}: {count} | " + " | ".join(faces)


# --- the displays ----------------------------------------------------------------------------


class Display(Protocol):
    every_s: float

    def show(self, update: Update) -> None: ...

    def close(self, reason: str) -> None: ...


class TerminalDisplay:
    """A line per update on stdout, and the limits whenever they change; never the picture."""

    every_s = TERMINAL_EVERY_S

    def __init__(self) -> None:
        self._limits = ""

    def show(self, update: Update) -> None:
        limits = update.limits_text()
        if limits != self._limits:  # once, unless the camera changes its frame size
            self._limits = limits
            print(limits, flush=True)
        print(terminal_line(update), flush=True)

    def close(self, reason: str) -> None:
        pass


# --- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config_path = args.config
    if config_path is None and INSTALLED_CONFIG.is_file():
        config_path = INSTALLED_CONFIG
    config = load_config(config_path)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    _say(privacy_warning(args))
    stop = threading.Event()
    stopped_by: list[str] = []
    verbose = bool(getattr(args, "verbose", False))
    with _stop_on_signals(stop, stopped_by), _quiet_sources(verbose):
        return _aim(args, config, stop, stopped_by)


def privacy_warning(args: argparse.Namespace) -> str:
    if args.terminal:
        what = "prints the faces the camera sees, their size and distance (no picture)"
    else:
        where = "this machine only" if _is_loopback(args.host) else "ANYONE ON THE NETWORK"
        what = (
            "shows the live camera picture with the faces in it, their size and distance, to"
            f" whoever opens its page on {args.host} ({where})"
        )
    return (
        f"edge-agent aim: for installing the camera only. It {what}. Nothing is stored: frames"
        " stay in memory and no image is written. Tell the people in front of the camera."
        f" It stops by itself after {args.minutes:g} minutes; Ctrl-C stops it now."
    )


def _aim(
    args: argparse.Namespace, config: Config, stop: threading.Event, stopped_by: list[str]
) -> int:
    from edge_agent.sources.factory import reader_for
    from edge_agent.vision.analyzer import VisionPipeline

    settings = config.source_settings()
    # The camera opens on the reader's thread while the models load here.
    reader = reader_for(settings).start()
    try:
        pipeline = VisionPipeline(config.vision_settings())
        first = _first_frame(reader, settings, stop)
        if first is None:  # a signal while waiting
            _say(f"edge-agent aim: stopped ({stopped_by[0] if stopped_by else 'signal'})")
            return 0
        display: Display
        if args.terminal:
            display = TerminalDisplay()
        else:
            from edge_agent.commands.aim_view import AimPage, AimPageError

            page = AimPage(args.host, args.port)
            try:
                page.start()
            except AimPageError as error:
                print(f"edge-agent: error: {error}", file=sys.stderr)
                return 2
            _say(
                f"edge-agent aim: open {page.url} in a browser{_tunnel_hint(args.host, page.port)}"
            )
            display = page
        reason = "stopped by an error"
        try:
            reason = _loop(args, config, reader, pipeline, display, first, stop, stopped_by)
        finally:
            display.close(reason)
        _say(f"edge-agent aim: {reason}; nothing was stored")
        return 0
    finally:
        reader.stop()


def _loop(
    args: argparse.Namespace,
    config: Config,
    reader: LatestFrameReader,
    pipeline: VisionPipeline,
    display: Display,
    first: Frame,
    stop: threading.Event,
    stopped_by: list[str],
) -> str:
    """Show frames until the deadline, a signal or the end of a finite source; says which."""
    settings = config.source_settings()
    describe = _describe(settings.spec)
    min_face_px = config.vision.quality.min_face_px
    hfov = config.source.horizontal_fov_deg
    deadline = time.monotonic() + args.minutes * 60
    frame: Frame | None = first
    last: Frame = first
    last_at = time.monotonic()
    while not stop.is_set():
        began = time.monotonic()
        if began >= deadline:
            return f"stopped after {args.minutes:g} minutes (--minutes)"
        if frame is None:
            frame = reader.latest(min(POLL_S, deadline - began))
        if frame is None:
            if reader.ended:
                return "the source has no more frames"
            stale_s = time.monotonic() - last_at
            if stale_s >= settings.stall_timeout_s:
                # The last picture stays, marked as old, while the reader reconnects.
                stats = reader.stats()
                display.show(
                    Update(
                        last,
                        [],
                        Lens(hfov, last.width),
                        min_face_px,
                        describe,
                        deadline - time.monotonic(),
                        stale_s=stale_s,
                        source_problem=_problem(stats),
                    )
                )
                stop.wait(display.every_s)
            continue
        faces = pipeline.faces(frame.image)
        lens = Lens(hfov, frame.width)
        display.show(
            Update(frame, face_rows(faces, lens), lens, min_face_px, describe, deadline - began)
        )
        last, last_at, frame = frame, time.monotonic(), None
        stop.wait(max(0.0, display.every_s - (time.monotonic() - began)))
    return f"stopped ({stopped_by[0] if stopped_by else 'signal'})"


def _first_frame(
    reader: LatestFrameReader, settings: SourceSettings, stop: threading.Event
) -> Frame | None:
    """The first frame, waiting up to `source.stall_timeout_s`; a SourceError (one line from
    the command) if none comes; None if a signal came first."""
    from edge_agent.sources.base import SourceError
    from edge_agent.sources.spec import parse_spec

    deadline = time.monotonic() + settings.stall_timeout_s
    while not stop.is_set():
        frame = reader.latest(max(0.0, min(POLL_S, deadline - time.monotonic())))
        if frame is not None:
            return frame
        problem = _problem(reader.stats())
        # A file or folder that failed once stays failed; a camera or stream may still come.
        given_up = reader.ended or (problem is not None and parse_spec(settings.spec).is_file)
        if given_up or time.monotonic() >= deadline:
            why = problem or f"no frame within {settings.stall_timeout_s:g} s"
            hint = ""
            if parse_spec(settings.spec).is_camera:
                from edge_agent.commands.doctor.base import SERVICE, service_active

                if service_active():
                    hint = f" ({SERVICE} is running and probably holds the camera:"
                    hint += " sudo systemctl stop edge-agent)"
            raise SourceError(f"no picture from {_describe(settings.spec)}: {why}{hint}")
    return None


def _problem(stats: SourceStats) -> str | None:
    error = stats.last_error
    if error is None:
        return None
    # The reader prefixes the exception type; "SourceError: " says nothing to an installer.
    return error.removeprefix("SourceError: ")


def _describe(spec: str | int) -> str:
    from edge_agent.sources.base import redact_url

    return redact_url(str(spec))


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _tunnel_hint(host: str, port: int) -> str:
    if not _is_loopback(host):
        return ""
    return f" on this machine (from a laptop: ssh -L {port}:127.0.0.1:{port} USER@THIS-DISPLAY)"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, stopped_by: list[str]) -> Iterator[None]:
    """SIGINT and SIGTERM end the loop cleanly. Python lets only the main thread set handlers;
    elsewhere (a test driving the command) the caller stops it another way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _quiet_sources(verbose: bool) -> Iterator[None]:
    """The reader logs every open, failure and retry, and OpenCV warns on each failed open; here
    the display says what matters, and a camera that cannot be opened is one error line, not a
    page of retries (-v shows them)."""
    if verbose:
        yield
        return
    import cv2

    logger = logging.getLogger("edge_agent.sources")
    before, cv2_before = logger.level, cv2.utils.logging.getLogLevel()
    logger.setLevel(logging.CRITICAL)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)
        cv2.utils.logging.setLogLevel(cv2_before)
