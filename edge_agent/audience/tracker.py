"""Follow faces across frames: stable track ids, tentative until seen a few times, lost after
a while unseen.

Association uses box overlap and keypoint distance against where each track is predicted to
be (constant velocity), so a face still matches when the reader skipped frames. There is no
re-identification by appearance, on purpose: a person who leaves and comes back is a new
track and is counted again. Nothing that could recognise a person is ever computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.audience.values import TrackedFace, TrackerSettings, TrackerUpdate, TrackState
from edge_agent.vision.values import Box, Detection


@dataclass(slots=True)
class _Track:
    track_id: int
    detection: Detection
    first_seen: float
    last_seen: float
    hits: int = 1
    best_score: float = 0.0
    state: TrackState = TrackState.TENTATIVE
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px/s of the centre

    def predicted_box(self, timestamp: float) -> Box:
        dx, dy = self.velocity * (timestamp - self.last_seen)
        box = self.detection.box
        return Box(box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)

    def snapshot(self, matched_now: bool) -> TrackedFace:
        return TrackedFace(
            track_id=self.track_id,
            state=self.state,
            detection=self.detection,
            matched_now=matched_now,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            hits=self.hits,
        )


def _keypoints(detection: Detection) -> np.ndarray:
    return np.array(detection.landmarks[:4], dtype=np.float64)


class Tracker:
    """Greedy association on a small cost matrix: a shop display sees a handful of faces,
    where greedy and optimal assignment agree and greedy costs microseconds."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: Sequence[Detection], timestamp: float) -> TrackerUpdate:
        settings = self.settings
        pairs = self._associate(detections, timestamp)
        matched_detections = {detection_index for detection_index, _ in pairs}
        confirmed_now: list[int] = []
        for detection_index, track_index in pairs:
            track = self._tracks[track_index]
            detection = detections[detection_index]
            elapsed = timestamp - track.last_seen
            if elapsed > 0:
                old, new = track.detection.box.center, detection.box.center
                measured = np.array([new.x - old.x, new.y - old.y]) / elapsed
                # Smoothed, so one jittery box does not fling the prediction away; the first
                # measurement is taken as it is rather than averaged with a made-up zero.
                track.velocity = measured if track.hits == 1 else 0.5 * (track.velocity + measured)
            track.detection = detection
            track.last_seen = timestamp
            track.hits += 1
            track.best_score = max(track.best_score, detection.score)
            if (
                track.state is TrackState.TENTATIVE
                and track.hits >= settings.confirm_hits
                and track.best_score >= settings.confirm_min_score
            ):
                track.state = TrackState.CONFIRMED
                confirmed_now.append(track.track_id)
        for index, detection in enumerate(detections):
            if index not in matched_detections:
                track = _Track(
                    next(self._ids), detection, timestamp, timestamp, best_score=detection.score
                )
                if settings.confirm_hits <= 1 and detection.score >= settings.confirm_min_score:
                    track.state = TrackState.CONFIRMED
                    confirmed_now.append(track.track_id)
                self._tracks.append(track)
                pairs.append((index, len(self._tracks) - 1))
        matches = tuple(sorted((d, self._tracks[t].track_id) for d, t in pairs))
        matched_ids = {track_id for _, track_id in matches}

        live: list[_Track] = []
        ended: list[TrackedFace] = []
        for track in self._tracks:
            unseen = timestamp - track.last_seen
            too_slow = (
                track.state is TrackState.TENTATIVE
                and timestamp - track.first_seen > settings.confirm_within_s
            )
            if unseen > settings.lost_after_s or too_slow:
                if track.state is TrackState.CONFIRMED:
                    track.state = TrackState.ENDED
                    ended.append(track.snapshot(matched_now=False))
                continue
            live.append(track)
        self._tracks = live
        return TrackerUpdate(
            timestamp=timestamp,
            tracks=tuple(t.snapshot(matched_now=t.track_id in matched_ids) for t in live),
            confirmed_now=tuple(confirmed_now),
            ended=tuple(ended),
            matches=matches,
        )

    def _associate(
        self, detections: Sequence[Detection], timestamp: float
    ) -> list[tuple[int, int]]:
        """(detection index, track index) pairs, best first, each side used once."""
        settings = self.settings
        candidates: list[tuple[float, int, int]] = []
        for t, track in enumerate(self._tracks):
            predicted = track.predicted_box(timestamp)
            shift = np.array(predicted.center) - np.array(track.detection.box.center)
            track_points = _keypoints(track.detection) + shift
            width = max(track.detection.box.width, 1.0)
            after_gap = timestamp - track.last_seen > settings.gap_after_s
            for d, detection in enumerate(detections):
                size_ratio = max(detection.box.width, 1.0) / width
                size_ratio = max(size_ratio, 1.0 / size_ratio)
                if size_ratio > settings.max_size_ratio:
                    continue
                if after_gap and (
                    size_ratio > settings.gap_max_size_ratio
                    or predicted.iou(detection.box) < settings.gap_min_iou
                ):
                    continue
                overlap = predicted.iou(detection.box)
                distance = float(
                    np.linalg.norm(_keypoints(detection) - track_points, axis=1).mean() / width
                )
                if overlap < settings.min_iou and distance > settings.max_keypoint_shift:
                    continue
                # Lower is better: overlap and keypoint agreement both count.
                candidates.append(((1.0 - overlap) + distance, d, t))
        candidates.sort()
        used_detections: set[int] = set()
        used_tracks: set[int] = set()
        pairs: list[tuple[int, int]] = []
        for _, d, t in candidates:
            if d in used_detections or t in used_tracks:
                continue
            used_detections.add(d)
            used_tracks.add(t)
            pairs.append((d, t))
        return pairs
