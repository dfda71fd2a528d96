"""The plain values the audience stage takes and hands on: tracks, per-person estimates,
what is in front of the screen now, and closed windows of counts.

Per-person values (`PersonEstimate`, `PersonNow`, `PersonVisit`) stay in the process: the ads
stage decides on them, but only counts (`AudienceReport`, folded segments) are published.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from enum import StrEnum

from edge_agent.segments import DEFAULT_BRACKETS, Brackets, Gender, segment_name
from edge_agent.vision.values import Box, Detection

# --------------------------------------------------------------------------------------------
# Tracking


class TrackState(StrEnum):
    TENTATIVE = "tentative"  # seen, not yet often enough to count as a person
    CONFIRMED = "confirmed"
    ENDED = "ended"  # unseen for longer than `lost_after_s`; final


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    confirm_hits: int = 3  # detections before a track counts as a person
    confirm_within_s: float = 1.0  # ... and they must come this soon, or the track is dropped
    # A track starts only from a detection this confident: real faces score well above the
    # detection threshold at some point, the odd textured patch that passes it does not
    # (ByteTrack's high threshold).
    confirm_min_score: float = 0.6
    # Weaker detections down to this only continue a track seen a moment ago, where it was
    # predicted to be: a blurred, turned or half-hidden face (ByteTrack's second stage).
    low_score: float = 0.3
    lost_after_s: float = 1.5  # unseen this long: the person has left
    min_iou: float = 0.2  # to the predicted box, to be the same face ...
    max_keypoint_shift: float = 0.6  # ... or keypoints within this many face widths
    max_size_ratio: float = 1.3  # a face does not grow or shrink more than this between sightings
    # After a gap in sightings (the person looked away, or left), only a face where the track
    # was heading and of the same size continues it: someone else stepping into the spot
    # usually differs in one of the two.
    gap_after_s: float = 0.3
    gap_min_iou: float = 0.5
    gap_max_size_ratio: float = 1.15


@dataclass(frozen=True, slots=True)
class TrackedFace:
    """One track as of one frame."""

    track_id: int
    state: TrackState
    detection: Detection  # the latest detection matched to the track
    matched_now: bool  # False while coasting through a missed detection
    first_seen: float  # monotonic seconds
    last_seen: float
    hits: int
    box: Box  # where the tracker believes the face is now (the filtered, predicted box)


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """What one frame changed: the live tracks, and the tracks that ended with this frame."""

    timestamp: float
    tracks: tuple[TrackedFace, ...]
    confirmed_now: tuple[int, ...]
    ended: tuple[TrackedFace, ...]  # confirmed tracks that ended; dropped tentatives are not
    matches: tuple[tuple[int, int], ...]  # (detection index, track id) for this frame


# --------------------------------------------------------------------------------------------
# Demographics per person


@dataclass(frozen=True, slots=True)
class FusionSettings:
    samples_needed: int = 5  # good samples after which an estimate is final
    gender_margin: float = 0.15  # p_female within 0.5 +- margin is unknown
    brackets: Brackets = DEFAULT_BRACKETS


@dataclass(frozen=True, slots=True)
class PersonEstimate:
    gender: Gender
    p_female: float | None
    age_years: float | None
    age_bracket: str | None
    samples: int
    final: bool

    @property
    def segment(self) -> str:
        """ "female/20-34"; "unknown" unless both gender and age bracket are known."""
        return segment_name(self.gender, self.age_bracket)


# A person with no usable face sample yet.
NO_ESTIMATE = PersonEstimate(Gender.UNKNOWN, None, None, None, 0, False)


# --------------------------------------------------------------------------------------------
# Audience measurement


@dataclass(frozen=True, slots=True)
class AudienceSettings:
    window_s: float = 60.0
    min_segment_size: int = 5
    viewer_max_yaw_deg: float = 30.0
    viewer_max_pitch_deg: float = 25.0
    viewer_min_attention_s: float = 1.0
    look_break_s: float = 0.5  # a look survives a break this long (missed or noisy frames)
    # The gender x age mix is also folded over this longer span: a one-minute window in a
    # shop holds so few people that nearly all of it folds into "other" (scripts/other_share.py).
    mix_window_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class PersonVisit:
    """One person's visit, kept in memory only until it is folded into a report."""

    track_id: int
    first_seen: float  # monotonic seconds
    last_seen: float
    dwell_s: float
    attention_s: float
    longest_look_s: float
    viewer: bool
    estimate: PersonEstimate

    @property
    def segment(self) -> str:
        return self.estimate.segment


@dataclass(frozen=True, slots=True)
class DurationStats:
    count: int
    mean_s: float
    median_s: float
    p90_s: float
    max_s: float

    @classmethod
    def of(cls, values: list[float]) -> DurationStats:
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        return cls(
            count=len(values),
            mean_s=round(statistics.fmean(values), 2),
            median_s=round(statistics.median(values), 2),
            p90_s=round(p90, 2),
            max_s=round(ordered[-1], 2),
        )


@dataclass(frozen=True, slots=True)
class PersonNow:
    """One person in front of the screen now, as the ad rules see them. In process only:
    nothing per person is ever published."""

    track_id: int
    estimate: PersonEstimate
    looking: bool  # facing the screen in this frame
    attention_s: float  # seconds spent looking at the screen during this visit so far
    dwell_s: float


@dataclass(frozen=True, slots=True)
class AudienceSnapshot:
    """Who is in front of the screen now, reduced to what ad rules need."""

    timestamp: float
    present: int
    viewers_now: int
    segments: dict[str, int]  # "female/20-34" -> people present now
    people: tuple[PersonNow, ...] = ()


@dataclass(frozen=True, slots=True)
class AudienceMix:
    """Who passed over a longer span (`mix_window_s`, whole report windows): the segments are
    folded over the whole span, so more of them reach the threshold than in any one window."""

    window_start_wall: float
    window_end_wall: float
    passers_by: int
    viewers: int
    segments: dict[str, int]
    viewer_segments: dict[str, int]


@dataclass(frozen=True, slots=True)
class AudienceReport:
    """One closed window. Counts only; segments below the threshold are folded."""

    window_start_wall: float
    window_end_wall: float
    passers_by: int
    viewers: int
    segments: dict[str, int]  # passers-by per "gender/bracket", "unknown" and "other"
    viewer_segments: dict[str, int]
    dwell: DurationStats
    attention: DurationStats  # viewers only
    min_segment_size: int
    mix: AudienceMix | None = None  # on the report that closes a mix window

    def to_json(self) -> dict[str, object]:
        """The report as one JSON object, for the log and `edge-agent demo --json`."""
        return {"type": "audience_report", **dataclasses.asdict(self)}
