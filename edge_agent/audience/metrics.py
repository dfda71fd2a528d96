"""Audience measurement in the industry's vocabulary, per closed time window.

Definitions (also in the README):

- passer-by (opportunity to see): a confirmed track — a face seen `confirm_hits` times.
- dwell time: from a person's first to last detection.
- looking: the face is frontal within `viewer_max_yaw_deg` / `viewer_max_pitch_deg`, as read
  from its keypoints in that frame.
- attention time: total time spent looking.
- a look: from a frame in which the person is looking to the last such frame before a break
  longer than `look_break_s` (plus one frame interval). A missed detection or one noisy pose
  reading inside a look does not end it.
- viewer: a passer-by whose longest look lasted at least `viewer_min_attention_s`.
- current viewers: confirmed people looking right now.

A person is counted once, in the window in which they leave, with their whole dwell and
attention: nothing is counted twice and every number is complete when published. Segments
(gender x age bracket) smaller than `min_segment_size` are folded into "other" before a
report leaves this module, so no small group can be singled out.

One window holds few people, so most of its mix folds into "other". The mix is therefore also
counted over a longer span (`mix_window_s`, an hour by default) and folded over that whole
span; it rides on the report that closes the span. No table published holds a group smaller
than k: the window's, the span's, or the day's (which adds up the spans).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.audience.values import (
    NO_ESTIMATE,
    AudienceMix,
    AudienceReport,
    AudienceSettings,
    AudienceSnapshot,
    DurationStats,
    PersonEstimate,
    PersonNow,
    PersonVisit,
    TrackerUpdate,
    TrackState,
)
from edge_agent.segments import fold_small_segments
from edge_agent.vision.values import Landmarks


@dataclass(slots=True)
class _Presence:
    first_seen: float
    last_seen: float
    last_frame: float
    attention_s: float = 0.0
    longest_look_s: float = 0.0
    looking_now: bool = False  # inside a look (it may be bridging a short break)
    look_started: float = 0.0
    last_looking: float = 0.0  # the last frame in which the person was seen looking
    confirmed: bool = False
    estimate: PersonEstimate = NO_ESTIMATE


@dataclass(slots=True)
class _Window:
    start: float  # monotonic
    start_wall: float
    visits: list[PersonVisit] = field(default_factory=list)


@dataclass(slots=True)
class _Mix:
    """The unfolded counts of the current mix span; they never leave this module unfolded."""

    start: float  # monotonic
    start_wall: float
    passers_by: int = 0
    viewers: int = 0
    segments: Counter[str] = field(default_factory=Counter)
    viewer_segments: Counter[str] = field(default_factory=Counter)


class Audience:
    """Consumes tracker updates frame by frame; closes a window every `window_s`."""

    def __init__(
        self,
        settings: AudienceSettings | None = None,
        on_visit: Callable[[PersonVisit], None] | None = None,
    ) -> None:
        """`on_visit` sees each finished visit; only evaluation uses it, and a visit never
        leaves the process (reports carry counts only)."""
        self.settings = settings or AudienceSettings()
        self.on_visit = on_visit
        self._presence: dict[int, _Presence] = {}
        self._window: _Window | None = None
        self._mix: _Mix | None = None

    def update(
        self, update: TrackerUpdate, estimates: dict[int, PersonEstimate], wall_time: float
    ) -> tuple[AudienceSnapshot, AudienceReport | None]:
        """Feed one frame. `estimates` maps track ids to their fused demographics; the last
        one seen for a track is what its visit is counted with when it ends."""
        now = update.timestamp
        if self._window is None:
            self._window = _Window(now, wall_time)
        for track in update.tracks:
            presence = self._presence.get(track.track_id)
            if presence is None:
                presence = _Presence(track.first_seen, track.last_seen, now)
                self._presence[track.track_id] = presence
            self._observe(presence, track.matched_now, track.detection.landmarks, now)
            presence.last_seen = track.last_seen
            presence.confirmed = track.state is TrackState.CONFIRMED
            presence.estimate = estimates.get(track.track_id, presence.estimate)
        for track in update.ended:
            self._end_visit(track.track_id)
        # Tentative tracks that were dropped never became people.
        live = {track.track_id for track in update.tracks}
        for track_id in list(self._presence):
            if track_id not in live:
                del self._presence[track_id]
        snapshot = self._snapshot(update, estimates)
        report = None
        if now - self._window.start >= self.settings.window_s:
            report = self._close_window(now, wall_time, closing_mix=False)
        return snapshot, report

    def flush(
        self, now: float, wall_time: float, estimates: dict[int, PersonEstimate]
    ) -> AudienceReport:
        """Close the current window early (clean shutdown): people still present are counted."""
        for track_id, presence in list(self._presence.items()):
            if presence.confirmed:
                presence.estimate = estimates.get(track_id, presence.estimate)
                self._end_visit(track_id)
        self._presence.clear()
        if self._window is None:
            self._window = _Window(now, wall_time)
        # Shutting down: the span so far is published rather than lost.
        return self._close_window(now, wall_time, closing_mix=True)

    def _observe(
        self, presence: _Presence, matched: bool, landmarks: Landmarks, now: float
    ) -> None:
        frame_step = now - presence.last_frame
        presence.last_frame = now
        looking = False
        if matched:
            yaw, pitch, _ = landmarks.pose()
            looking = (
                abs(yaw) <= self.settings.viewer_max_yaw_deg
                and abs(pitch) <= self.settings.viewer_max_pitch_deg
            )
        # A break as long as the look-break allowance beyond the normal frame spacing is
        # bridged, so a look survives a missed detection or a noisy reading, at any frame rate.
        allowed_break = self.settings.look_break_s + frame_step
        if looking:
            if presence.looking_now and now - presence.last_looking <= allowed_break:
                presence.attention_s += now - presence.last_looking
            else:
                presence.look_started = now
            presence.looking_now = True
            presence.last_looking = now
            presence.longest_look_s = max(
                presence.longest_look_s, presence.last_looking - presence.look_started
            )
        elif presence.looking_now and now - presence.last_looking > allowed_break:
            presence.looking_now = False

    def _end_visit(self, track_id: int) -> None:
        presence = self._presence.pop(track_id, None)
        if presence is None or self._window is None:
            return
        visit = PersonVisit(
            track_id=track_id,
            first_seen=presence.first_seen,
            last_seen=presence.last_seen,
            dwell_s=presence.last_seen - presence.first_seen,
            attention_s=presence.attention_s,
            longest_look_s=presence.longest_look_s,
            viewer=presence.longest_look_s >= self.settings.viewer_min_attention_s,
            estimate=presence.estimate,
        )
        self._window.visits.append(visit)
        if self.on_visit is not None:
            self.on_visit(visit)

    def _snapshot(
        self, update: TrackerUpdate, estimates: dict[int, PersonEstimate]
    ) -> AudienceSnapshot:
        confirmed = [t for t in update.tracks if t.state is TrackState.CONFIRMED]
        segments: Counter[str] = Counter()
        people = []
        for track in confirmed:
            presence = self._presence.get(track.track_id)
            estimate = estimates.get(track.track_id, NO_ESTIMATE)
            segments[estimate.segment] += 1
            if presence is not None:
                people.append(
                    PersonNow(
                        track.track_id,
                        estimate,
                        presence.looking_now,
                        presence.attention_s,
                        presence.last_seen - presence.first_seen,
                    )
                )
        viewers_now = sum(person.looking for person in people)
        return AudienceSnapshot(
            update.timestamp, len(confirmed), viewers_now, dict(segments), tuple(people)
        )

    def _close_window(self, now: float, wall_time: float, *, closing_mix: bool) -> AudienceReport:
        window = self._window
        assert window is not None
        visits = window.visits
        viewers = [v for v in visits if v.viewer]
        k = self.settings.min_segment_size
        mix = self._mix or _Mix(window.start, window.start_wall)
        mix.passers_by += len(visits)
        mix.viewers += len(viewers)
        mix.segments.update(v.segment for v in visits)
        mix.viewer_segments.update(v.segment for v in viewers)
        self._mix = mix
        closed_mix = None
        if closing_mix or now - mix.start >= self.settings.mix_window_s:
            closed_mix = AudienceMix(
                window_start_wall=mix.start_wall,
                window_end_wall=wall_time,
                passers_by=mix.passers_by,
                viewers=mix.viewers,
                segments=fold_small_segments(mix.segments, k),
                viewer_segments=fold_small_segments(mix.viewer_segments, k),
            )
            self._mix = None
        report = AudienceReport(
            window_start_wall=window.start_wall,
            window_end_wall=wall_time,
            passers_by=len(visits),
            viewers=len(viewers),
            segments=fold_small_segments(Counter(v.segment for v in visits), k),
            viewer_segments=fold_small_segments(Counter(v.segment for v in viewers), k),
            dwell=DurationStats.of([v.dwell_s for v in visits]),
            attention=DurationStats.of([v.attention_s for v in viewers]),
            min_segment_size=k,
            mix=closed_mix,
        )
        self._window = _Window(now, wall_time)
        return report
