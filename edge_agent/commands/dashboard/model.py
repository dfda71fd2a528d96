"""What the dashboard knows: the frozen snapshots it shows, and the state that builds them.

`FleetModel` is plain in-memory state, fed one MQTT message at a time (from paho's network
thread) and read as frozen `FleetView` / `DeviceView` snapshots, so the renderer never shares a
mutable value with that thread. It never trusts its input: a payload that is not JSON, has
another `schema_version`, an unknown `type`, a type that does not belong on its topic, a
site/device that contradicts the topic, or a field of the wrong kind is counted as *ignored* and
changes nothing. Duplicates (same `id`, e.g. an outbox replay) and messages older than what is
shown (by `ts_ms`) are counted but never replace newer values. The exception is `availability`:
it is taken in arrival order, because the broker's last will `offline` carries the time the
connection *started* (it is built before connecting), which is older than the `online` it
follows.

A `listener` (the web dashboard's `History`) is told of each accepted message with its parsed
value: states only when newer than the one shown, records (windows, plays, errors) always, so
that a window replayed late from an outbox still counts in its minute.

Age brackets are read from the segment keys themselves through `edge_agent.segments`, never
hard-coded, because each device's `vision.age_brackets` decides them.

No rich and no paho here: the model is tested by feeding it messages directly, and the values
it hands out are what both the renderer and the feed agree on.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from edge_agent.segments import bracket_order, parse_flat_segment
from edge_agent.telemetry.topics import SPECS, TOPICS, Leaf, fleet_subscription, parse_topic
from edge_agent.telemetry.values import DEFAULT_BASE

SCHEMA_VERSION = 1  # the only payload version this dashboard understands
DEFAULT_BROKER = "localhost:1883"  # here, not in the command: FleetModel labels with it too
# Ids remembered to drop duplicates; the model shows latest values, so forgetting very old ids
# costs at most a miscounted duplicate, never a wrong number on screen.
SEEN_IDS_MAX = 50_000

MESSAGE_TYPES = {spec.message_type for spec in TOPICS}
# The measures a window counts per segment, as key prefixes: passers_by_female_20_34.
SEGMENT_MEASURES = ("passers_by", "viewers")


# --------------------------------------------------------------------------------------------
# Snapshot values: frozen, handed from the model to the renderer


@dataclass(frozen=True, slots=True)
class Availability:
    state: str  # online | stopped | offline
    ts_ms: int
    version: str | None
    # When the device entered this state. None for an `offline` found retained at subscribe:
    # the will's ts is when the connection began, not when it died.
    since_ms: int | None


@dataclass(frozen=True, slots=True)
class Health:
    ts_ms: int
    fps: float
    interval_s: float | None
    outbox_pending: int | None
    outbox_dropped: int | None
    source_connected: bool | None


@dataclass(frozen=True, slots=True)
class CurrentAudience:
    ts_ms: int
    present: int
    viewers_now: int


@dataclass(frozen=True, slots=True)
class Today:
    ts_ms: int
    date: str
    passers_by: int
    viewers: int
    # The day's mix (the sum of its closed mix spans, so it covers fewer than passers_by).
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True, slots=True)
class Playing:
    ts_ms: int
    creative_id: str
    rule_id: str | None
    reason: str
    started_ms: int  # when the play began (its `started`); ts_ms is when it was published


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a window: a gender x age bracket, or `other` / `unknown`."""

    name: str  # "female/20-34", "male/55+", "other", "unknown"
    gender: str | None  # None for other/unknown
    bracket: str | None
    passers_by: int
    viewers: int | None  # None: the payload had no viewer count for this segment

    @property
    def bracket_order(self) -> tuple[int, str]:
        """Brackets sort by their lowest age (0-12 before 13-19 before 55+)."""
        return bracket_order(self.bracket or "")


@dataclass(frozen=True, slots=True)
class Mix:
    """The longer span's mix (`mix_` keys) on the report that closes a span."""

    window_start: str
    window_end: str
    passers_by: int
    viewers: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Window:
    ts_ms: int  # the window's end
    window_start: str
    window_end: str
    passers_by: int
    viewers: int
    min_segment_size: int | None
    segments: tuple[Segment, ...]
    # Dwell is over passers-by, attention over viewers (both None when the window had none).
    dwell_mean_s: float | None = None
    attention_mean_s: float | None = None
    mix: Mix | None = None


@dataclass(frozen=True, slots=True)
class PlayRecord:
    """One finished play (`ads/play`) with the audience it had."""

    ts_ms: int  # when it ended
    creative_id: str
    rule_id: str | None
    duration_s: float
    people: int
    viewers: int
    attention_s: float
    segments: tuple[Segment, ...]  # people per segment; viewers is None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    ts_ms: int
    kind: str
    message: str
    file: str | None
    line: int | None


@dataclass(frozen=True, slots=True)
class DeviceView:
    site: str
    device: str
    availability: Availability | None = None
    health: Health | None = None
    current: CurrentAudience | None = None
    today: Today | None = None
    playing: Playing | None = None
    window: Window | None = None
    last_error: ErrorEvent | None = None
    window_s: float | None = None  # from the privacy statement: how often a window closes

    @property
    def name(self) -> str:
        return f"{self.site}/{self.device}"

    @property
    def state(self) -> str:
        return self.availability.state if self.availability else "unknown"


@dataclass(frozen=True, slots=True)
class FleetView:
    broker: str
    subscription: str
    taken_ms: int  # when the snapshot was taken; every "ago" is relative to it
    connected: bool
    connection_note: str | None  # why not connected, or None
    received: int
    ignored: int
    duplicates: int
    out_of_order: int
    devices: tuple[DeviceView, ...]

    @property
    def online(self) -> int:
        return sum(device.state == "online" for device in self.devices)


# --------------------------------------------------------------------------------------------
# The model


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # valid; shown now (or a valid type the dashboard has no place for)
    IGNORED = "ignored"  # not a message of the contract this dashboard understands
    DUPLICATE = "duplicate"  # an id already seen
    OUT_OF_ORDER = "out_of_order"  # older (ts_ms) than the value shown


class _Invalid(ValueError):
    """A payload that breaks the contract: ignored, counted."""


def _field(payload: dict[str, Any], key: str, kinds: tuple[type, ...], *, optional: bool) -> Any:
    value = payload.get(key)
    if value is None:
        if optional:
            return None
        raise _Invalid(f"{key} missing")
    # bool is an int in Python, but never a count or a rate in the contract.
    if isinstance(value, bool) and bool not in kinds:
        raise _Invalid(f"{key}: {value!r}")
    if not isinstance(value, kinds):
        raise _Invalid(f"{key}: {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise _Invalid(f"{key}: negative")
    return value


def _count(payload: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    return _field(payload, key, (int,), optional=optional)


def _number(payload: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = _field(payload, key, (int, float), optional=optional)
    if value is not None and not math.isfinite(value):
        raise _Invalid(f"{key}: not finite")
    return value


def _text(payload: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    return _field(payload, key, (str,), optional=optional)


def _iso_ms(text: str | None) -> int | None:
    """Unix milliseconds of an ISO 8601 time with a zone; None when absent or unreadable."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return round(moment.timestamp() * 1000) if moment.tzinfo else None


def parse_segments(
    payload: dict[str, Any], measures: tuple[str, str] = SEGMENT_MEASURES
) -> tuple[Segment, ...]:
    """The segments from their flat keys (`passers_by_female_20_34`, `viewers_other`),
    whatever brackets the device was configured with. `measures`: the key prefixes of the
    people counted and of the viewers among them (`mix_passers_by`, `mix_viewers`)."""
    passers: dict[str, tuple[str | None, str | None, int]] = {}
    viewers: dict[str, int] = {}
    for key in payload:
        parsed = parse_flat_segment(key, measures)
        if parsed is None:
            continue
        measure, (name, gender, bracket) = parsed
        count = _count(payload, key)
        if measure == measures[0]:
            passers[name] = (gender, bracket, count)
        else:
            viewers[name] = count
    return tuple(
        Segment(name, gender, bracket, count, viewers.get(name))
        for name, (gender, bracket, count) in sorted(passers.items())
    )


def _availability(
    payload: dict[str, Any], ts_ms: int, *, retained: bool, received_ms: int
) -> Availability:
    state = _text(payload, "state")
    if state not in ("online", "stopped", "offline"):
        raise _Invalid(f"state: {state!r}")
    since_ms: int | None = ts_ms
    if state == "offline":
        since_ms = None if retained else received_ms
    return Availability(state, ts_ms, _text(payload, "version", optional=True), since_ms)


def _health(payload: dict[str, Any], ts_ms: int) -> Health:
    connected = payload.get("source_connected")
    return Health(
        ts_ms,
        _number(payload, "fps"),
        _number(payload, "interval_s", optional=True),
        _count(payload, "outbox_pending", optional=True),
        _count(payload, "outbox_dropped", optional=True),
        connected if isinstance(connected, bool) else None,
    )


def _window(payload: dict[str, Any], ts_ms: int) -> Window:
    mix = None
    if payload.get("mix_window_start") is not None:
        mix = Mix(
            _text(payload, "mix_window_start"),
            _text(payload, "mix_window_end"),
            _count(payload, "mix_passers_by"),
            _count(payload, "mix_viewers"),
            parse_segments(payload, ("mix_passers_by", "mix_viewers")),
        )
    return Window(
        ts_ms,
        _text(payload, "window_start"),
        _text(payload, "window_end"),
        _count(payload, "passers_by"),
        _count(payload, "viewers"),
        _count(payload, "min_segment_size", optional=True),
        parse_segments(payload),
        _number(payload, "dwell_mean_s", optional=True),
        _number(payload, "attention_mean_s", optional=True),
        mix,
    )


def _play(payload: dict[str, Any], ts_ms: int) -> PlayRecord:
    return PlayRecord(
        ts_ms,
        _text(payload, "creative_id"),
        _text(payload, "rule_id", optional=True),
        _number(payload, "duration_s"),
        _count(payload, "people"),
        _count(payload, "viewers"),
        _number(payload, "attention_s", optional=True) or 0.0,
        # "people_x" keys only; "viewers_x" never occurs on a play, so nothing pairs with them.
        parse_segments(payload, ("people", "viewers")),
    )


def _error(payload: dict[str, Any], ts_ms: int) -> ErrorEvent:
    return ErrorEvent(
        ts_ms,
        _text(payload, "kind"),
        _text(payload, "message"),
        _text(payload, "file", optional=True),
        _count(payload, "line", optional=True),
    )


# Records, as opposed to states: each one counts, even one older than the one shown.
EVENT_LEAVES = frozenset({Leaf.AUDIENCE_REPORT, Leaf.ADS_PLAY, Leaf.EVENTS_ERROR})

# Called (under the model's lock, so keep it quick and never call back into the model) for
# each accepted message with a parsed value: (site, device, leaf, value).
Listener = Callable[[str, str, Leaf, object], None]

# The DeviceView field each displayed leaf fills.
_SLOT = {
    Leaf.AVAILABILITY: "availability",
    Leaf.STATS: "health",
    Leaf.AUDIENCE_CURRENT: "current",
    Leaf.AUDIENCE_TODAY: "today",
    Leaf.ADS_PLAYING: "playing",
    Leaf.AUDIENCE_REPORT: "window",
    Leaf.EVENTS_ERROR: "last_error",
}


class FleetModel:
    """What the dashboard knows, fed by `handle` from any thread, read by `snapshot`."""

    def __init__(
        self,
        base: str = DEFAULT_BASE,
        *,
        broker: str = DEFAULT_BROKER,
        subscription: str | None = None,
        listener: Listener | None = None,
    ) -> None:
        """`listener`: told of every accepted message (the web dashboard's history)."""
        self.base = base
        self._listener = listener
        self.broker = broker
        self.subscription = subscription or fleet_subscription(base)
        self._lock = threading.Lock()
        self._devices: dict[tuple[str, str], DeviceView] = {}
        self._seen_ids: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._received = 0
        self._ignored = 0
        self._duplicates = 0
        self._out_of_order = 0
        self._connected = False
        self._connection_note: str | None = "connecting"
        self._changes = 0

    @property
    def changes(self) -> int:
        """Counts every message and connection change: a cheap "has anything changed"."""
        return self._changes

    def set_connection(self, connected: bool, note: str | None = None) -> None:
        with self._lock:
            self._connected, self._connection_note = connected, note
            self._changes += 1

    def handle(
        self,
        topic: str,
        payload: bytes,
        *,
        retained: bool = False,
        received_ms: int | None = None,
    ) -> Outcome:
        """Take one message; never raises on bad input."""
        received_ms = round(time.time() * 1000) if received_ms is None else received_ms
        with self._lock:
            self._received += 1
            self._changes += 1
            try:
                outcome = self._apply(topic, payload, retained, received_ms)
            except Exception:
                # Whatever a payload does to the parser (bad JSON, wrong kinds, nesting deep
                # enough for RecursionError) it must not kill paho's network thread.
                outcome = Outcome.IGNORED
            if outcome is Outcome.IGNORED:
                self._ignored += 1
            elif outcome is Outcome.DUPLICATE:
                self._duplicates += 1
            elif outcome is Outcome.OUT_OF_ORDER:
                self._out_of_order += 1
            return outcome

    def _apply(self, topic: str, raw: bytes, retained: bool, received_ms: int) -> Outcome:
        where = parse_topic(topic, self.base)
        if where is None:
            return Outcome.IGNORED
        site, device, leaf = where
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            return Outcome.IGNORED
        version = payload.get("schema_version")
        if isinstance(version, bool) or version != SCHEMA_VERSION:  # True == 1 in Python
            return Outcome.IGNORED
        kind = payload.get("type")
        if kind not in MESSAGE_TYPES or kind != SPECS[leaf].message_type:
            return Outcome.IGNORED
        if payload.get("site") != site or payload.get("device") != device:
            return Outcome.IGNORED
        message_id = _text(payload, "id")
        ts_ms = _count(payload, "ts_ms")

        # Parse before touching any state, so an invalid message leaves no trace but a count.
        value: object
        if leaf is Leaf.AVAILABILITY:
            value = _availability(payload, ts_ms, retained=retained, received_ms=received_ms)
        elif leaf is Leaf.STATS:
            value = _health(payload, ts_ms)
        elif leaf is Leaf.AUDIENCE_CURRENT:
            value = CurrentAudience(
                ts_ms, _count(payload, "present"), _count(payload, "viewers_now")
            )
        elif leaf is Leaf.AUDIENCE_TODAY:
            value = Today(
                ts_ms,
                _text(payload, "date"),
                _count(payload, "passers_by"),
                _count(payload, "viewers"),
                parse_segments(payload),
            )
        elif leaf is Leaf.ADS_PLAYING:
            value = Playing(
                ts_ms,
                _text(payload, "creative_id"),
                _text(payload, "rule_id", optional=True),
                _text(payload, "reason", optional=True) or "",
                _iso_ms(_text(payload, "started", optional=True)) or ts_ms,
            )
        elif leaf is Leaf.AUDIENCE_REPORT:
            value = _window(payload, ts_ms)
        elif leaf is Leaf.EVENTS_ERROR:
            value = _error(payload, ts_ms)
        elif leaf is Leaf.PRIVACY:
            value = _number(payload, "window_s", optional=True)
        elif leaf is Leaf.ADS_PLAY:
            value = _play(payload, ts_ms)
        else:
            value = None  # ads/decision: valid, nothing of its is on screen

        if message_id in self._seen_ids:
            return Outcome.DUPLICATE
        self._remember(message_id)
        current = self._devices.get((site, device)) or DeviceView(site, device)
        outcome = Outcome.ACCEPTED
        slot = _SLOT.get(leaf)
        if slot is not None:
            shown = getattr(current, slot)
            # Availability goes by arrival: see the module docstring (the will's old ts).
            if leaf is not Leaf.AVAILABILITY and shown is not None and ts_ms < shown.ts_ms:
                outcome = Outcome.OUT_OF_ORDER
            else:
                current = replace(current, **{slot: value})
        elif leaf is Leaf.PRIVACY and value is not None:
            current = replace(current, window_s=value)
        self._devices[(site, device)] = current
        # A record (a window, a play, an error) counts even when it is older than the one
        # shown, e.g. replayed from an outbox; a stale state does not.
        counts = outcome is Outcome.ACCEPTED or leaf in EVENT_LEAVES
        if self._listener is not None and value is not None and counts:
            self._listener(site, device, leaf, value)
        return outcome

    def _remember(self, message_id: str) -> None:
        self._seen_ids.add(message_id)
        self._seen_order.append(message_id)
        if len(self._seen_order) > SEEN_IDS_MAX:
            self._seen_ids.discard(self._seen_order.popleft())

    def snapshot(self, now_ms: int | None = None) -> FleetView:
        with self._lock:
            return FleetView(
                broker=self.broker,
                subscription=self.subscription,
                taken_ms=round(time.time() * 1000) if now_ms is None else now_ms,
                connected=self._connected,
                connection_note=self._connection_note,
                received=self._received,
                ignored=self._ignored,
                duplicates=self._duplicates,
                out_of_order=self._out_of_order,
                devices=tuple(self._devices[key] for key in sorted(self._devices)),
            )
