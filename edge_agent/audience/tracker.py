"""Follow faces across frames: stable track ids, tentative until seen a few times, lost after
a while unseen.

Each track carries a Kalman filter over the face's centre and width and their velocities, so
a face walking toward the camera (growing 2-3x in a few seconds) or across it is predicted to
where and how big it will be, also across frames the reader skipped or the detector missed.

Association is ByteTrack's two stages: confident detections are matched to every track first;
then weaker ones (a blurred, turned or half-hidden face) only continue a track that was seen a
moment ago, where it was predicted to be. New tracks start only from confident detections, so
the weak ones can keep a person but never invent one.

There is no re-identification by appearance, on purpose: a person who leaves and comes back
is a new track and is counted again. Nothing that could recognise a person is ever computed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.audience.values import TrackedFace, TrackerSettings, TrackerUpdate, TrackState
from edge_agent.vision.values import Box, Detection

# Measurement noise of a detection, as a share of the face's width (YuNet's box jitters by
# about 3-5 % of its width from frame to frame on a still face).
_MEASURE_STD = 0.05
# How fast a face's velocity may change, in face widths per second squared: a shopper
# starting, stopping or turning. Larger follows sudden moves, smaller rides out jitter.
_ACCELERATION_STD = 1.5
# A new face's velocity is unknown: up to a few face widths per second.
_INITIAL_SPEED_STD = 3.0
# The prediction follows the velocity for at most this long; beyond it a person who stopped
# or turned is more likely than one still walking in a straight line.
_MAX_PREDICTION_S = 0.6
# A weak detection continues a track only if it overlaps the prediction this much
# (ByteTrack's second stage uses 0.5).
_WEAK_MIN_IOU = 0.5
# A turning head's box jumps for a few frames (a real clip: 70 px frontal, 84-95 px turned,
# 70 px again a frame later), and the filter follows the jump as growth. A size is plausible
# if it matches the prediction or any of this many latest sightings.
_SIZE_HISTORY = 5

# State: centre x, centre y, width, and their rates (px, px/s).
_MEASURE = np.hstack([np.eye(3), np.zeros((3, 3))])


@dataclass(slots=True)
class _Motion:
    """The Kalman filter's belief about one face at time `at`."""

    mean: np.ndarray  # (6,)
    covariance: np.ndarray  # (6, 6)
    at: float
    aspect: float  # box height / width, smoothed; the filter tracks the width only

    @classmethod
    def start(cls, box: Box, at: float) -> _Motion:
        centre, width = box.center, max(box.width, 1.0)
        mean = np.array([centre.x, centre.y, width, 0.0, 0.0, 0.0])
        position_std = _MEASURE_STD * width
        speed_std = _INITIAL_SPEED_STD * width
        covariance = np.diag([position_std**2] * 3 + [speed_std**2] * 3)
        return cls(mean, covariance, at, max(box.height, 1.0) / width)

    def predicted(self, timestamp: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance at `timestamp`; the filter itself does not move."""
        dt = max(0.0, timestamp - self.at)
        transition = np.eye(6)
        transition[0:3, 3:6] = np.eye(3) * min(dt, _MAX_PREDICTION_S)
        width = max(self.mean[2], 1.0)
        # White-noise acceleration over dt, per axis: [[dt^3/3, dt^2/2], [dt^2/2, dt]].
        q = (_ACCELERATION_STD * width) ** 2
        noise = np.zeros((6, 6))
        noise[0:3, 0:3] = np.eye(3) * q * dt**3 / 3
        noise[0:3, 3:6] = noise[3:6, 0:3] = np.eye(3) * q * dt**2 / 2
        noise[3:6, 3:6] = np.eye(3) * q * dt
        mean = transition @ self.mean
        mean[2] = max(mean[2], 1.0)
        return mean, transition @ self.covariance @ transition.T + noise

    def box(self, timestamp: float) -> Box:
        """The predicted box: the mean alone, in plain floats (called per track and frame)."""
        moving = min(max(0.0, timestamp - self.at), _MAX_PREDICTION_S)
        cx, cy, width, vx, vy, vw = self.mean.tolist()
        return _box_of(cx + vx * moving, cy + vy * moving, width + vw * moving, self.aspect)

    def correct(self, box: Box, timestamp: float) -> None:
        mean, covariance = self.predicted(timestamp)
        centre, width = box.center, max(box.width, 1.0)
        measured = np.array([centre.x, centre.y, width])
        noise = np.eye(3) * (_MEASURE_STD * width) ** 2
        innovation_covariance = _MEASURE @ covariance @ _MEASURE.T + noise
        gain = covariance @ _MEASURE.T @ np.linalg.inv(innovation_covariance)
        self.mean = mean + gain @ (measured - _MEASURE @ mean)
        self.covariance = (np.eye(6) - gain @ _MEASURE) @ covariance
        self.at = timestamp
        self.aspect = 0.7 * self.aspect + 0.3 * max(box.height, 1.0) / width


def _box_of(cx: float, cy: float, width: float, aspect: float) -> Box:
    width = max(width, 1.0)
    half_w, half_h = width / 2, width * aspect / 2
    return Box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


@dataclass(slots=True)
class _Track:
    track_id: int
    detection: Detection
    motion: _Motion
    first_seen: float
    last_seen: float
    hits: int = 1
    state: TrackState = TrackState.TENTATIVE
    widths: deque[float] = field(default_factory=lambda: deque(maxlen=_SIZE_HISTORY))

    def snapshot(self, matched_now: bool, timestamp: float) -> TrackedFace:
        return TrackedFace(
            track_id=self.track_id,
            state=self.state,
            detection=self.detection,
            matched_now=matched_now,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            hits=self.hits,
            box=self.motion.box(timestamp),
        )


def _size_ratio(a: Box, b: Box) -> float:
    """How many times wider the wider of two boxes is."""
    return _width_ratio(a.width, b.width)


def _width_ratio(a: float, b: float) -> float:
    ratio = max(a, 1.0) / max(b, 1.0)
    return max(ratio, 1.0 / ratio)


def _keypoints(detection: Detection) -> np.ndarray:
    return np.array(detection.landmarks[:4], dtype=np.float64)


class Tracker:
    """Greedy association on a small cost matrix: a shop display sees a handful of faces,
    where greedy and optimal assignment nearly always agree and greedy costs microseconds."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    @property
    def weakest_score(self) -> float:
        """The weakest detection score the tracker has a use for."""
        return min(self.settings.low_score, self.settings.confirm_min_score)

    def predicted(self, timestamp: float) -> list[tuple[int, Box]]:
        """(track id, where its face is expected at `timestamp`) for every live track; the
        filters do not move (the pipeline searches there before the frame's update)."""
        return [(track.track_id, track.motion.box(timestamp)) for track in self._tracks]

    def update(self, detections: Sequence[Detection], timestamp: float) -> TrackerUpdate:
        settings = self.settings
        strong = [i for i, d in enumerate(detections) if d.score >= settings.confirm_min_score]
        weak = [
            i
            for i, d in enumerate(detections)
            if settings.low_score <= d.score < settings.confirm_min_score
        ]
        pairs = self._associate(detections, strong, range(len(self._tracks)), timestamp)
        taken = {t for _, t in pairs}
        recent = [
            t
            for t, track in enumerate(self._tracks)
            if t not in taken and timestamp - track.last_seen <= settings.gap_after_s
        ]
        pairs += self._associate(detections, weak, recent, timestamp, weak=True)

        confirmed_now: list[int] = []
        for detection_index, track_index in pairs:
            track = self._tracks[track_index]
            detection = detections[detection_index]
            track.motion.correct(detection.box, timestamp)
            track.widths.append(detection.box.width)
            track.detection = detection
            track.last_seen = timestamp
            track.hits += 1
            if track.state is TrackState.TENTATIVE and track.hits >= settings.confirm_hits:
                track.state = TrackState.CONFIRMED
                confirmed_now.append(track.track_id)
        matched_detections = {d for d, _ in pairs}
        for index in strong:
            if index in matched_detections:
                continue
            detection = detections[index]
            track = _Track(
                next(self._ids),
                detection,
                _Motion.start(detection.box, timestamp),
                timestamp,
                timestamp,
            )
            track.widths.append(detection.box.width)
            if settings.confirm_hits <= 1:
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
                    ended.append(track.snapshot(False, timestamp))
                continue
            live.append(track)
        self._tracks = live
        return TrackerUpdate(
            timestamp=timestamp,
            tracks=tuple(t.snapshot(t.track_id in matched_ids, timestamp) for t in live),
            confirmed_now=tuple(confirmed_now),
            ended=tuple(ended),
            matches=matches,
        )

    def _associate(
        self,
        detections: Sequence[Detection],
        detection_indexes: Sequence[int],
        track_indexes: Sequence[int],
        timestamp: float,
        *,
        weak: bool = False,
    ) -> list[tuple[int, int]]:
        """(detection index, track index) pairs, best first, each side used once."""
        settings = self.settings
        candidates: list[tuple[float, int, int]] = []
        for t in track_indexes:
            track = self._tracks[t]
            predicted = track.motion.box(timestamp)
            last = track.detection.box
            width = max(predicted.width, 1.0)
            shift = np.array(predicted.center) - np.array(last.center)
            track_points = _keypoints(track.detection) + shift
            after_gap = timestamp - track.last_seen > settings.gap_after_s
            for d in detection_indexes:
                detection = detections[d]
                # Where the track was heading, or where it was last seen: a person who stood
                # still while looking away has a prediction that has drifted with the jitter.
                size_ratio = min(
                    _size_ratio(detection.box, predicted),
                    _size_ratio(detection.box, last),
                    *(_width_ratio(detection.box.width, seen) for seen in track.widths),
                )
                overlap = max(
                    predicted.iou(detection.box), last.iou(detection.box) if after_gap else 0.0
                )
                if size_ratio > settings.max_size_ratio:
                    continue
                if weak and overlap < _WEAK_MIN_IOU:
                    continue
                if after_gap and (
                    size_ratio > settings.gap_max_size_ratio or overlap < settings.gap_min_iou
                ):
                    continue
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
