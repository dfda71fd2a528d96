"""What the web dashboard remembers over time: windows and plays in time buckets, and errors.

`audience/report`, `ads/play` and `events/error` are not retained: a subscriber that was not
listening when one was sent never sees it. So the dashboard process keeps its own bounded
history, fed by `FleetModel`'s listener (the model has already validated, de-duplicated and
parsed each message), and hands it to every page that opens.

Bounded in time and in size, whatever the fleet sends: windows are summed into buckets of
`bucket_s` (60 s) by the time they end, plays per creative into buckets of `PLAY_BUCKET_S`
(10 min: the page shows plays as totals over the history, never per minute, and a bucket of
plays with its segments costs far more than one of windows), and buckets older than `hours`
are dropped; a record older than that, or more than a bucket ahead of this machine's clock (a
display with a wrong clock), is counted as outside the history and kept nowhere. Each bucket is
kept once for the fleet, once per site and once per device ("scopes"), so a page showing any of
them reads its series without summing the fleet on every update. Memory: about (devices + sites
+ 1) x (hours x 60 window buckets + hours x 6 x creatives played per 10 minutes) small objects;
measured, 100 displays x 6 h with 8 creatives: see docs/mqtt.md.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.commands.dashboard.model import ErrorEvent, Mix, PlayRecord, Segment, Window
from edge_agent.telemetry.topics import Leaf

DEFAULT_HOURS = 6.0
BUCKET_S = 60
PLAY_BUCKET_S = 600
ERRORS_KEPT = 200
FLEET = ""  # the scope of the whole fleet; a site is "site", a device "site/device"


@dataclass(slots=True)
class PlayTotals:
    """Plays of one creative within a bucket (mutable, owned by History's lock)."""

    plays: int = 0
    duration_s: float = 0.0
    people: int = 0
    viewers: int = 0
    attention_s: float = 0.0
    segments: Counter[str] = field(default_factory=Counter)

    def add(self, play: PlayRecord) -> None:
        self.plays += 1
        self.duration_s += play.duration_s
        self.people += play.people
        self.viewers += play.viewers
        self.attention_s += play.attention_s
        for segment in play.segments:
            self.segments[segment.name] += segment.passers_by

    def merge(self, other: PlayTotals) -> None:
        self.plays += other.plays
        self.duration_s += other.duration_s
        self.people += other.people
        self.viewers += other.viewers
        self.attention_s += other.attention_s
        self.segments.update(other.segments)


@dataclass(slots=True)
class Bucket:
    """Everything that ended within one bucket, for one scope (mutable, under History's lock)."""

    windows: int = 0
    passers_by: int = 0
    viewers: int = 0
    # Sums, so that a bucket's mean over several windows and devices is weighted by people.
    dwell_s: float = 0.0
    dwell_people: int = 0
    attention_s: float = 0.0
    attention_people: int = 0

    def add_window(self, window: Window) -> None:
        self.windows += 1
        self.passers_by += window.passers_by
        self.viewers += window.viewers
        if window.dwell_mean_s is not None and window.passers_by:
            self.dwell_s += window.dwell_mean_s * window.passers_by
            self.dwell_people += window.passers_by
        if window.attention_mean_s is not None and window.viewers:
            self.attention_s += window.attention_mean_s * window.viewers
            self.attention_people += window.viewers


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start_ms: int
    passers_by: int
    viewers: int
    dwell_mean_s: float | None
    attention_mean_s: float | None


@dataclass(frozen=True, slots=True)
class CreativeSummary:
    creative_id: str
    plays: int
    duration_s: float
    people: int
    viewers: int
    attention_s: float
    segments: tuple[tuple[str, int], ...]  # people per segment, largest first


@dataclass(frozen=True, slots=True)
class ScopeHistory:
    """One scope's history, frozen for the page."""

    bucket_s: int
    hours: float
    series: tuple[SeriesPoint, ...]  # oldest first; only buckets that saw a window
    creatives: tuple[CreativeSummary, ...]  # most plays first
    errors: tuple[tuple[str, ErrorEvent], ...]  # (site/device, error), newest first
    mixes: tuple[Mix, ...]  # the last mix span of each device in the scope


def scopes_of(site: str, device: str) -> tuple[str, str, str]:
    return FLEET, site, f"{site}/{device}"


def in_scope(scope: str, site: str, device: str) -> bool:
    return scope in scopes_of(site, device)


class History:
    """Fed by `FleetModel`'s listener (paho's thread), read by the web server (its own)."""

    def __init__(
        self,
        hours: float = DEFAULT_HOURS,
        bucket_s: int = BUCKET_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hours = hours
        self.bucket_s = bucket_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[int, Bucket]] = {}
        # scope -> bucket start -> creative -> totals
        self._plays: dict[str, dict[int, dict[str, PlayTotals]]] = {}
        self._errors: deque[tuple[str, str, ErrorEvent]] = deque(maxlen=ERRORS_KEPT)
        self._mixes: dict[tuple[str, str], Mix] = {}
        self.outside = 0  # records too old or too far ahead to keep
        self.version = 0  # bumped by every message that changes what a page shows

    # -- the listener (paho's thread, under the model's lock) --------------------------------

    def __call__(self, site: str, device: str, leaf: Leaf, value: object) -> None:
        with self._lock:
            self.version += 1
            if isinstance(value, Window):
                bucket_at = self._bucket_for(value.ts_ms)
                if bucket_at is not None:
                    for scope in scopes_of(site, device):
                        self._bucket(scope, bucket_at).add_window(value)
                if value.mix is not None:
                    self._mixes[(site, device)] = value.mix
            elif isinstance(value, PlayRecord):
                bucket_at = self._bucket_for(value.ts_ms, PLAY_BUCKET_S)
                if bucket_at is not None:
                    for scope in scopes_of(site, device):
                        plays = self._play_bucket(scope, bucket_at)
                        plays.setdefault(value.creative_id, PlayTotals()).add(value)
            elif isinstance(value, ErrorEvent):
                self._errors.append((site, device, value))

    def _bucket_for(self, ts_ms: int, size_s: int | None = None) -> int | None:
        now_ms = self._clock() * 1000
        if not now_ms - self.hours * 3_600_000 <= ts_ms <= now_ms + self.bucket_s * 1000:
            self.outside += 1
            return None
        size_ms = (size_s or self.bucket_s) * 1000
        return ts_ms - ts_ms % size_ms

    def _bucket(self, scope: str, start_ms: int) -> Bucket:
        buckets = self._buckets.setdefault(scope, {})
        bucket = buckets.get(start_ms)
        if bucket is None:
            bucket = buckets[start_ms] = Bucket()
            self._evict(buckets, self.bucket_s)
        return bucket

    def _play_bucket(self, scope: str, start_ms: int) -> dict[str, PlayTotals]:
        buckets = self._plays.setdefault(scope, {})
        bucket = buckets.get(start_ms)
        if bucket is None:
            bucket = buckets[start_ms] = {}
            self._evict(buckets, PLAY_BUCKET_S)
        return bucket

    def _evict(self, buckets: dict[int, Any], size_s: int) -> None:
        """Drop the buckets that ended before the hours kept."""
        oldest_ms = self._clock() * 1000 - self.hours * 3_600_000 - size_s * 1000
        for start_ms in [at for at in buckets if at < oldest_ms]:
            del buckets[start_ms]

    # -- the reader (the web server) ---------------------------------------------------------

    def scope(self, scope: str) -> ScopeHistory:
        with self._lock:
            buckets = self._buckets.get(scope, {})
            self._evict(buckets, self.bucket_s)
            ordered = sorted(buckets.items())
            series = tuple(
                SeriesPoint(
                    start_ms,
                    bucket.passers_by,
                    bucket.viewers,
                    bucket.dwell_s / bucket.dwell_people if bucket.dwell_people else None,
                    bucket.attention_s / bucket.attention_people
                    if bucket.attention_people
                    else None,
                )
                for start_ms, bucket in ordered
                if bucket.windows
            )
            play_buckets = self._plays.get(scope, {})
            self._evict(play_buckets, PLAY_BUCKET_S)
            totals: dict[str, PlayTotals] = {}
            for bucket_plays in play_buckets.values():
                for creative_id, plays in bucket_plays.items():
                    totals.setdefault(creative_id, PlayTotals()).merge(plays)
            errors = tuple(
                (f"{site}/{device}", error)
                for site, device, error in reversed(self._errors)
                if in_scope(scope, site, device)
            )
            mixes = tuple(
                mix
                for (site, device), mix in sorted(self._mixes.items())
                if in_scope(scope, site, device)
            )
        creatives = tuple(
            CreativeSummary(
                creative_id,
                plays.plays,
                plays.duration_s,
                plays.people,
                plays.viewers,
                plays.attention_s,
                tuple(plays.segments.most_common()),
            )
            for creative_id, plays in sorted(
                totals.items(), key=lambda item: (-item[1].plays, item[0])
            )
        )
        return ScopeHistory(self.bucket_s, self.hours, series, creatives, errors, mixes)


def sum_segments(groups: list[tuple[Segment, ...]]) -> tuple[Segment, ...]:
    """Segments of several devices (or windows) added up by name; viewers None where none had
    a viewer count."""
    passers: Counter[str] = Counter()
    viewers: dict[str, int] = {}
    kinds: dict[str, Segment] = {}
    for segments in groups:
        for segment in segments:
            passers[segment.name] += segment.passers_by
            if segment.viewers is not None:
                viewers[segment.name] = viewers.get(segment.name, 0) + segment.viewers
            kinds.setdefault(segment.name, segment)
    return tuple(
        Segment(name, kinds[name].gender, kinds[name].bracket, passers[name], viewers.get(name))
        for name in sorted(passers)
    )
