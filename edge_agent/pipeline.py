"""One frame through every stage: detect, track, classify who still needs it, count.

No threads, no I/O: the daemon feeds frames in and publishes what comes out, tests and
`eval-footage` drive it directly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import (
    AudienceReport,
    AudienceSnapshot,
    PersonEstimate,
    TrackerUpdate,
)
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.detectors.base import RegionDetector
from edge_agent.vision.detectors.regions import Region, merged, regions_around
from edge_agent.vision.motion import MotionGate
from edge_agent.vision.values import Box, Detection

# A face's region between full scans: the box the tracker predicts for the frame, grown by
# this share of its size on each side, for the error of that prediction (a shopper who stops
# or turns; frames the reader skipped).
REGION_MARGIN = 0.75
# A box within this share of its width of the frame's edge (or past it) is a face the frame
# may cut off: its chip would be part padding, and an estimate from it a guess.
EDGE_MARGIN = 0.02


def cut_off(box: Box, width: int, height: int) -> bool:
    margin = EDGE_MARGIN * box.width
    return box.x0 < margin or box.y0 < margin or box.x1 > width - margin or box.y1 > height - margin


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent in each stage for one frame."""

    detect_ms: float
    track_ms: float
    classify_ms: float
    audience_ms: float
    faces: int
    classified: int

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.track_ms + self.classify_ms + self.audience_ms


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame_index: int
    tracks: TrackerUpdate
    snapshot: AudienceSnapshot
    report: AudienceReport | None  # set when this frame closed a window
    times: StageTimes


class FramePipeline:
    def __init__(
        self,
        vision: VisionPipeline,
        tracker: Tracker,
        fusion: DemographicsFusion,
        audience: Audience,
    ) -> None:
        self.vision = vision
        self.tracker = tracker
        self.fusion = fusion
        self.audience = audience
        self._estimates: dict[int, PersonEstimate] = {}
        self._frames_to_full_scan = 0
        self._whole_frame_at = -math.inf
        self._motion = MotionGate() if vision.settings.motion_scan else None
        detector = vision.detector
        # An Edge TPU model is compiled for one input size; regions come in many.
        self._regional: RegionDetector | None = (
            detector
            if isinstance(detector, RegionDetector) and vision.settings.delegate == "cpu"
            else None
        )

    def _detect(self, image: np.ndarray, timestamp: float) -> list[Detection]:
        """A full scan every `full_scan_every` frames: the whole frame or, with `motion_scan`,
        where the picture changed since the previous full scan and around the tracks. In
        between, only around the tracks, and halfway the whole frame coarsely."""
        # Weak detections too: they keep tracks alive, and only the tracker uses them.
        min_score = self.tracker.weakest_score
        settings = self.vision.settings
        if self._regional is None:
            return self.vision.detector.detect(image, min_score)
        full_scan = self._frames_to_full_scan <= 0
        changed: list[Region] = []
        if full_scan:
            self._frames_to_full_scan = settings.full_scan_every - 1
            moved = self._motion.changed_regions(image) if self._motion is not None else None
            # Also when the clock went back (frames from another source).
            due = not 0 <= timestamp - self._whole_frame_at < settings.whole_frame_every_s
            if moved is None or due:
                self._whole_frame_at = timestamp
                return self.vision.detector.detect(image, min_score)
            changed = moved
        else:
            self._frames_to_full_scan -= 1
        regions = merged([*self._track_regions(image, timestamp), *changed])
        # Halfway between full scans, a coarse scan of the whole frame finds someone stepping
        # up close within a few frames, not at the next full scan.
        coarse = not full_scan and self._frames_to_full_scan == (settings.full_scan_every - 1) // 2
        return self._regional.detect_regions(image, regions, min_score, coarse=coarse)

    def _track_regions(self, image: np.ndarray, timestamp: float) -> list[Region]:
        height, width = image.shape[:2]
        followed: list[Box] = []
        classifying: list[Box] = []
        for track_id, box in self.tracker.predicted(timestamp):
            # A face still being classified needs exact landmarks; the others only to be found.
            needs_detail = self.fusion.needs_sample(track_id)
            (classifying if needs_detail else followed).append(box)
        return regions_around(followed, width, height, REGION_MARGIN, full_detail=classifying)

    def process(self, frame: Frame) -> FrameResult:
        clock = time.perf_counter
        started = clock()
        detections = self._detect(frame.image, frame.monotonic)
        detected = clock()
        update = self.tracker.update(detections, frame.monotonic)
        tracked = clock()
        classified = 0
        sample_min_score = self.tracker.settings.confirm_min_score
        height, width = frame.image.shape[:2]
        for detection_index, track_id in update.matches:
            detection = detections[detection_index]
            # Classify a person, not a frame: only until their estimate is final, only from
            # confident detections (a weak one is often a poorly placed box), and only from
            # whole faces.
            if (
                detection.score >= sample_min_score
                and not cut_off(detection.box, width, height)
                and self.fusion.needs_sample(track_id)
            ):
                face = self.vision.analyzer.analyze(frame.image, detection)
                self._estimates[track_id] = self.fusion.add(track_id, face)
                classified += 1
        classified_at = clock()
        snapshot, report = self.audience.update(update, self._estimates, frame.wall_time)
        self._forget_gone(update)
        done = clock()
        times = StageTimes(
            detect_ms=(detected - started) * 1000,
            track_ms=(tracked - detected) * 1000,
            classify_ms=(classified_at - tracked) * 1000,
            audience_ms=(done - classified_at) * 1000,
            faces=len(detections),
            classified=classified,
        )
        return FrameResult(frame.index, update, snapshot, report, times)

    def idle(
        self, monotonic: float, wall_time: float
    ) -> tuple[AudienceSnapshot, AudienceReport | None]:
        """Time passes without a frame (the camera is down): people unseen for the tracker's
        `lost_after_s` leave, and a window that is due closes on time with what it has."""
        update = self.tracker.update((), monotonic)
        snapshot, report = self.audience.update(update, self._estimates, wall_time)
        self._forget_gone(update)
        return snapshot, report

    def _forget_gone(self, update: TrackerUpdate) -> None:
        for track in update.ended:
            self.fusion.forget(track.track_id)
            self._estimates.pop(track.track_id, None)
        live = {track.track_id for track in update.tracks}
        for track_id in [t for t in self._estimates if t not in live]:
            # Dropped tentative tracks: forget their samples too.
            self.fusion.forget(track_id)
            del self._estimates[track_id]

    def flush(self, monotonic: float, wall_time: float) -> AudienceReport:
        """Close the open window (on shutdown), counting the people still present."""
        return self.audience.flush(monotonic, wall_time, dict(self._estimates))
