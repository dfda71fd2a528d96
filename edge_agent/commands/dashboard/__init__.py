"""`edge-agent dashboard`: a live terminal view of one display or a whole fleet, over MQTT.

Why a terminal dashboard: a store manager (or the installer on a ladder with a laptop) wants to
see, without Grafana, whether each screen runs, what it shows, and who walked past in the last
window. Everything it shows comes from the published MQTT contract (`topics.py`, `payloads.py`,
`schemas/`), so it is also a living check that the contract carries what a person needs.

Three parts, kept apart so each can be tested on its own:

- `FleetModel`: plain in-memory state, fed one MQTT message at a time (from paho's network
  thread) and read as frozen `FleetView` / `DeviceView` snapshots. It never trusts its input:
  a payload that is not JSON, has another `schema_version`, an unknown `type`, a type that does
  not belong on its topic, a site/device that contradicts the topic, or a field of the wrong
  kind is counted as *ignored* and changes nothing. Duplicates (same `id`, e.g. an outbox
  replay) and messages older than what is shown (by `ts_ms`) are counted but never replace
  newer values. The exception is `availability`: it is taken in arrival order, because the
  broker's last will `offline` carries the time the connection *started* (it is built before
  connecting), which is older than the `online` it follows.
- The renderer (`render`): a pure function of a `FleetView` and the current time, so tests
  render to a recording `Console` and read what a person would read.
- `FleetFeed`: the paho-mqtt 2.x subscriber. It subscribes in `on_connect` (so a reconnect
  resubscribes), reconnects with back-off on paho's own thread and never publishes anything:
  the dashboard is a read-only observer and needs only subscribe rights.

Layout: up to `DETAIL_LIMIT` (6) devices get one detailed panel each (state, health, audience
now and today, what plays, the last error, and the last window as bars per gender x age
bracket). A larger fleet gets a compact table, one line per device under one line per site,
so 100 displays stay readable; its number columns never shrink and the creative's name is cut
first on a narrow terminal. `--device` (and `--site`) narrow the subscription to get the
detailed panels back, and `--layout panels|table` overrides the choice. The header always names
the devices that are not online, so a problem is visible even when the table is taller than the
terminal (the live view uses the alternate screen, like `top`; Ctrl-C leaves it).

Age brackets are read from the segment keys themselves (`passers_by_female_20_34` ->
female, 20-34), never hard-coded, because each device's `vision.age_brackets` decides them.
Window times are shown in the dashboard machine's local time.

`--once SECONDS` connects, collects for that long after the subscription is acknowledged
(retained states arrive at once; window reports are not retained and arrive only when a window
closes), prints one plain snapshot to stdout and exits 0; it exits 2 with a one-line reason on
stderr when the broker cannot be reached, refuses the connection, or does not answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edge_agent.segments import (
    OTHER,
    UNKNOWN,
    bracket_order,
    parse_flat_segment,
    segment_name,
)
from edge_agent.telemetry.client import new_paho_client
from edge_agent.telemetry.topics import (
    SPECS,
    TOPICS,
    Leaf,
    fleet_subscription,
    parse_topic,
)
from edge_agent.telemetry.values import DEFAULT_BASE, TlsSettings, check_id

SCHEMA_VERSION = 1  # the only payload version this dashboard understands
DEFAULT_BROKER = "localhost:1883"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
PASSWORD_ENVS = ("EDGE_AGENT_DASHBOARD_PASSWORD", "EDGE_AGENT__MQTT__PASSWORD")
DETAIL_LIMIT = 6  # more devices than this: one table line per device instead of panels
EXIT_NO_BROKER = 2
# How long --once waits for the broker to accept the connection and the subscription, on top
# of the collection time. A refusal or an unreachable port ends the wait at once.
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# Ids remembered to drop duplicates; the model shows latest values, so forgetting very old ids
# costs at most a miscounted duplicate, never a wrong number on screen.
SEEN_IDS_MAX = 50_000
BAR_WIDTH = 12  # cells for the largest segment of a window
NOT_ONLINE_NAMED_MAX = 8  # devices named in the header's "not online" line

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
class Window:
    ts_ms: int  # the window's end
    window_start: str
    window_end: str
    passers_by: int
    viewers: int
    min_segment_size: int | None
    segments: tuple[Segment, ...]


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


def parse_segments(payload: dict[str, Any]) -> tuple[Segment, ...]:
    """The window's segments from its flat keys (`passers_by_female_20_34`, `viewers_other`),
    whatever brackets the device was configured with."""
    passers: dict[str, tuple[str | None, str | None, int]] = {}
    viewers: dict[str, int] = {}
    for key in payload:
        parsed = parse_flat_segment(key, SEGMENT_MEASURES)
        if parsed is None:
            continue
        measure, (name, gender, bracket) = parsed
        count = _count(payload, key)
        if measure == "passers_by":
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
    return Window(
        ts_ms,
        _text(payload, "window_start"),
        _text(payload, "window_end"),
        _count(payload, "passers_by"),
        _count(payload, "viewers"),
        _count(payload, "min_segment_size", optional=True),
        parse_segments(payload),
    )


def _error(payload: dict[str, Any], ts_ms: int) -> ErrorEvent:
    return ErrorEvent(
        ts_ms,
        _text(payload, "kind"),
        _text(payload, "message"),
        _text(payload, "file", optional=True),
        _count(payload, "line", optional=True),
    )


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
    ) -> None:
        self.base = base
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

    def set_connection(self, connected: bool, note: str | None = None) -> None:
        with self._lock:
            self._connected, self._connection_note = connected, note

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
        else:
            value = None  # ads/play, ads/decision: valid, nothing of theirs is on screen

        if message_id in self._seen_ids:
            return Outcome.DUPLICATE
        self._remember(message_id)
        current = self._devices.get((site, device)) or DeviceView(site, device)
        slot = _SLOT.get(leaf)
        if slot is not None:
            shown = getattr(current, slot)
            # Availability goes by arrival: see the module docstring (the will's old ts).
            if leaf is not Leaf.AVAILABILITY and shown is not None and ts_ms < shown.ts_ms:
                return Outcome.OUT_OF_ORDER
            current = replace(current, **{slot: value})
        elif leaf is Leaf.PRIVACY and value is not None:
            current = replace(current, window_s=value)
        self._devices[(site, device)] = current
        return Outcome.ACCEPTED

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


# --------------------------------------------------------------------------------------------
# Rendering: pure functions of a FleetView

STATE_STYLE = {"online": "bold green", "stopped": "bold yellow", "offline": "bold red"}
GENDER_STYLE = {"female": "magenta", "male": "cyan"}
_EIGHTHS = " ▏▎▍▌▋▊▉"
NO_VALUE = "-"  # a value not received yet


def ago(ts_ms: int, now_ms: int) -> str:
    """'5 s ago', '3 min ago', '2 h ago', '4 d ago'; 'just now' under a second."""
    seconds = (now_ms - ts_ms) / 1000
    if seconds < 0:
        # The device's clock is ahead of this machine's; say so rather than hide it.
        return "just now" if seconds > -2 else f"{_span(-seconds)} ahead"
    if seconds < 1:
        return "just now"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def bar(count: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a cell; any count above 0 shows at least a sliver."""
    if count <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(count / largest * width * 8))
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def local_time(iso_utc: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso_utc).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso_utc


def _state_text(device: DeviceView, now_ms: int) -> Text:
    availability = device.availability
    if availability is None:
        return Text("? unknown: no availability message yet", style="dim")
    state = availability.state
    text = Text(f"● {state}", style=STATE_STYLE.get(state, ""))
    if availability.since_ms is not None:
        text.append(f" since {ago(availability.since_ms, now_ms)}")
    else:
        text.append(f" · connection lost (it had connected {ago(availability.ts_ms, now_ms)})")
    if availability.version:
        text.append(f" · v{availability.version}", style="dim")
    return text


def _health_text(health: Health | None, now_ms: int) -> Text:
    if health is None:
        return Text(NO_VALUE, style="dim")
    text = Text(f"{health.fps:.1f} fps")
    if health.outbox_pending is not None:
        waiting = health.outbox_pending
        text.append(f" · outbox {waiting} waiting", style="yellow" if waiting > 100 else "")
    if health.outbox_dropped:
        text.append(f" · {health.outbox_dropped} dropped", style="bold red")
    if health.source_connected is False:
        text.append(" · camera lost", style="bold red")
    # Stats come every interval_s; three missed in a row means the numbers above are old.
    late = health.interval_s is not None and now_ms - health.ts_ms > 3000 * health.interval_s
    text.append(f"  (stats {ago(health.ts_ms, now_ms)})", style="bold yellow" if late else "dim")
    return text


def _segment_cell(segment: Segment | None, largest: int, style: str) -> Text:
    if segment is None:
        return Text("")
    text = Text(bar(segment.passers_by, largest), style=style)
    text.append(f" {segment.passers_by}")
    if segment.viewers is not None:
        text.append(f" ({segment.viewers})", style="dim")
    return text


def render_window_bars(window: Window) -> Table:
    """Female and male side by side per age bracket, then other and unknown."""
    gendered = [segment for segment in window.segments if segment.gender is not None]
    genders = sorted(
        {segment.gender for segment in gendered if segment.gender},
        key=lambda gender: (gender not in GENDER_STYLE, gender),
    )
    brackets = sorted({(s.bracket_order, s.bracket) for s in gendered})
    by_name = {segment.name: segment for segment in window.segments}
    largest = max((segment.passers_by for segment in window.segments), default=0)
    table = Table(box=None, show_header=bool(genders), padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column("age", style="bold")
    for gender in genders or ["passers-by"]:
        table.add_column(gender, no_wrap=True)
    for _, bracket in brackets:
        table.add_row(
            bracket,
            *(
                _segment_cell(
                    by_name.get(segment_name(g, bracket)), largest, GENDER_STYLE.get(g, "")
                )
                for g in genders
            ),
        )
    for name in (OTHER, UNKNOWN):
        if name in by_name:
            cells = [Text("")] * max(0, len(genders) - 1)
            table.add_row(name, _segment_cell(by_name[name], largest, "white"), *cells)
    return table


def _window_block(device: DeviceView, now_ms: int) -> RenderableType:
    window = device.window
    if window is None:
        every = f" (one every {device.window_s:g} s)" if device.window_s else ""
        return Text(f"none received yet{every}: reports are not retained", style="dim")
    heading = Text(
        f"{local_time(window.window_start)} to {local_time(window.window_end)}"
        f" ({ago(window.ts_ms, now_ms)}): {window.passers_by} passers-by · {window.viewers}"
        " viewers"
    )
    if not window.segments:
        return heading
    note = "bar = passers-by, (n) = of them viewers"
    if window.min_segment_size:
        note += f"; groups under {window.min_segment_size} are counted in other"
    return Group(heading, render_window_bars(window), Text(note, style="dim"))


def render_device_panel(device: DeviceView, now_ms: int) -> Panel:
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column()
    rows.add_row("state", _state_text(device, now_ms))
    rows.add_row("health", _health_text(device.health, now_ms))
    current = device.current
    rows.add_row(
        "now",
        Text(
            f"{current.viewers_now} viewers · {current.present} present"
            f"  ({ago(current.ts_ms, now_ms)})"
        )
        if current
        else Text(NO_VALUE, style="dim"),
    )
    today = device.today
    rows.add_row(
        "today",
        Text(f"{today.passers_by} passers-by · {today.viewers} viewers  ({today.date})")
        if today
        else Text(NO_VALUE, style="dim"),
    )
    playing = device.playing
    if playing:
        text = Text(playing.creative_id, style="bold")
        text.append(f" · rule {playing.rule_id}" if playing.rule_id else " · default playlist")
        if playing.reason:
            text.append(f" · {playing.reason}")
        text.append(f"  (since {ago(playing.started_ms, now_ms)})", style="dim")
        rows.add_row("playing", text)
    else:
        rows.add_row("playing", Text(NO_VALUE, style="dim"))
    error = device.last_error
    if error:
        where = f" ({error.file}:{error.line})" if error.file and error.line else ""
        # events/error also carries the all-clear (source_back): not shown as an alarm.
        style = "green" if error.kind.endswith("_back") else "red"
        rows.add_row(
            "last error",
            Text(f"{error.kind} {ago(error.ts_ms, now_ms)}: {error.message}{where}", style=style),
        )
    rows.add_row("last window", _window_block(device, now_ms))
    return Panel(
        rows,
        title=Text(device.name, style="bold"),
        title_align="left",
        border_style=STATE_STYLE.get(device.state, "dim").replace("bold ", ""),
    )


def short_ago(ts_ms: int, now_ms: int) -> str:
    """'5s', '3m', '2h', '4d': ages for the one-line-per-device table."""
    seconds = max(0.0, (now_ms - ts_ms) / 1000)
    number, unit = _span(seconds).split()
    return f"{number}{unit[0]}"


def render_fleet_table(view: FleetView) -> Table:
    """One line per device under a line per site (so the device column stays narrow); the
    creative's name is last and is the one cut when the terminal is too narrow."""
    now_ms = view.taken_ms
    table = Table(
        box=box.SIMPLE_HEAD,  # its column separators are the only gaps: no padding needed
        padding=0,
        caption="now: viewers/present · today, window: passers-by/viewers · ages: s m h d ago",
        caption_justify="left",
    )
    rows: list[list[RenderableType]] = []
    site = None
    for device in view.devices:
        if device.site != site:
            site = device.site
            rows.append([Text(site, style="bold underline")] + [""] * (len(_FLEET_COLUMNS) - 1))
        rows.append(_table_row(device, now_ms))
    for index, name in enumerate(_FLEET_COLUMNS):
        if name == "playing":
            table.add_column(name, no_wrap=True, overflow="ellipsis")
            continue
        # Never shrunk: a cut number or state is worse than a cut creative name.
        widest = max([len(name), *(_width(row[index]) for row in rows)])
        justify: JustifyMethod = "left" if name in ("device", "state", "last error") else "right"
        table.add_column(name, justify=justify, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    return table


# "playing" last: it is the column a narrow terminal cuts.
_FLEET_COLUMNS = (
    "device",
    "state",
    "fps",
    "outbox",
    "now",
    "today",
    "window",
    "last error",
    "playing",
)


def _width(cell: RenderableType) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))


def _table_row(device: DeviceView, now_ms: int) -> list[RenderableType]:
    """The cells of one device, in _FLEET_COLUMNS order."""
    health, current, today = device.health, device.current, device.today
    window, error, availability = device.window, device.last_error, device.availability
    state = Text(device.state, style=STATE_STYLE.get(device.state, "dim"))
    if availability is not None and availability.since_ms is not None:
        state.append(f" {short_ago(availability.since_ms, now_ms)}")
    outbox = health.outbox_pending if health else None
    last_error: RenderableType = ""
    if error:
        style = "green" if error.kind.endswith("_back") else "red"
        last_error = Text(f"{error.kind} {short_ago(error.ts_ms, now_ms)}", style=style)
    return [
        Text(f"  {device.device}"),
        state,
        f"{health.fps:.1f}" if health else NO_VALUE,
        NO_VALUE if outbox is None else str(outbox),
        f"{current.viewers_now}/{current.present}" if current else NO_VALUE,
        f"{today.passers_by}/{today.viewers}" if today else NO_VALUE,
        f"{window.passers_by}/{window.viewers}" if window else NO_VALUE,
        last_error,
        device.playing.creative_id if device.playing else NO_VALUE,
    ]


def render_header(view: FleetView) -> RenderableType:
    line = Text("edge-agent dashboard", style="bold")
    line.append(f" · {view.broker} ")
    if view.connected:
        line.append("connected", style="green")
    else:
        line.append(view.connection_note or "not connected", style="bold red")
    line.append(f" · {view.subscription}", style="dim")
    counts = Text(f"devices {view.online}/{len(view.devices)} online")
    counts.append(f" · {view.received} messages received · {view.ignored} ignored")
    if view.duplicates:
        counts.append(f" · {view.duplicates} duplicates")
    if view.out_of_order:
        counts.append(f" · {view.out_of_order} out of order")
    counts.append(
        f" · {dt.datetime.fromtimestamp(view.taken_ms / 1000).strftime('%H:%M:%S')}", style="dim"
    )
    lines: list[RenderableType] = [line, counts]
    not_online = [device for device in view.devices if device.state != "online"]
    if not_online:
        names = ", ".join(
            f"{device.name} ({device.state})" for device in not_online[:NOT_ONLINE_NAMED_MAX]
        )
        more = len(not_online) - NOT_ONLINE_NAMED_MAX
        lines.append(
            Text(f"not online: {names}" + (f" and {more} more" if more > 0 else ""), style="red")
        )
    return Group(*lines)


def render(view: FleetView, layout: str = "auto") -> RenderableType:
    """The whole screen. layout: auto (panels up to DETAIL_LIMIT devices) | panels | table."""
    header = render_header(view)
    if not view.devices:
        waiting = "waiting for messages" if view.connected else "no data yet"
        return Group(header, Text(f"\nno device seen on {view.subscription} ({waiting})"))
    use_panels = layout == "panels" or (layout == "auto" and len(view.devices) <= DETAIL_LIMIT)
    if use_panels:
        panels = [render_device_panel(device, view.taken_ms) for device in view.devices]
        return Group(header, *panels)
    return Group(header, render_fleet_table(view))


# --------------------------------------------------------------------------------------------
# The MQTT side


@dataclass(frozen=True, slots=True)
class FeedSettings:
    host: str
    port: int
    base_topic: str = DEFAULT_BASE
    site: str = "+"
    device: str = "+"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = field(default_factory=lambda: f"edge-agent-dashboard-{uuid.uuid4().hex[:8]}")

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" + (" (TLS)" if self.tls else "")

    @property
    def subscription(self) -> str:
        return fleet_subscription(self.base_topic, self.site, self.device)


class FleetFeed:
    """A read-only paho 2.x subscriber feeding a FleetModel from paho's network thread."""

    def __init__(
        self, settings: FeedSettings, model: FleetModel, *, reconnect: bool = True
    ) -> None:
        """reconnect=False (--once): a refused connection ends at once instead of after a
        back-off sleep that close() would have to wait out."""
        self.settings = settings
        self.model = model
        self._settled = threading.Condition()
        self._subscribed = False
        self._failure: str | None = None
        self._subscribe_mid: int | None = None
        tls = TlsSettings(settings.ca_file, settings.cert_file, settings.key_file)
        client = new_paho_client(
            settings.client_id,
            username=settings.username,
            password=settings.password,
            tls=tls if settings.tls else None,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
            reconnect_on_failure=reconnect,
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (live mode): failures show in the header and paho retries
        with back-off, so the render loop never waits on the network."""
        self._client.connect_async(self.settings.host, self.settings.port)
        self._client.loop_start()

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
        """Connect and subscribe now (--once); None when subscribed, else why not."""
        settings = self.settings
        try:
            self._client.connect(settings.host, settings.port)
        except (OSError, ValueError) as error:  # refused, unknown host, TLS handshake
            return f"cannot reach the MQTT broker at {settings.label}: {error}"
        self._client.loop_start()
        with self._settled:
            self._settled.wait_for(lambda: self._subscribed or self._failure, timeout_s)
            if self._subscribed:
                return None
            return self._failure or (
                f"the MQTT broker at {settings.label} did not accept the connection and the"
                f" subscription within {timeout_s:g} s"
            )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            hint = " (check --username/--password)" if "authori" in str(reason).lower() else ""
            self._fail(
                f"the MQTT broker at {self.settings.label} refused the connection: {reason}{hint}"
            )
            return
        # Subscribing here keeps the subscription across reconnects (clean sessions).
        _, self._subscribe_mid = client.subscribe(self.settings.subscription, qos=1)
        self.model.set_connection(True)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        _properties: object,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        if any(reason.is_failure for reason in reasons):
            self._fail(f"the MQTT broker refused the subscription to {self.settings.subscription}")
            return
        with self._settled:
            self._subscribed = True
            self._settled.notify_all()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._fail(f"cannot reach {self.settings.label}; retrying")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        with self._settled:
            subscribed = self._subscribed
        if not subscribed:
            # Closed before it let us in: typically a TLS client certificate or credentials
            # the broker wants (some brokers close instead of refusing in the CONNACK).
            self._fail(
                f"the MQTT broker at {self.settings.label} closed the connection before letting"
                f" the dashboard in: {reason} (check --username/--password and the TLS options)"
            )
        else:
            self.model.set_connection(False, f"connection lost ({reason}); reconnecting")

    def _fail(self, why: str) -> None:
        self.model.set_connection(False, why)
        with self._settled:
            # The first reason is the telling one: a refused CONNACK is followed by a disconnect.
            self._failure = self._failure or why
            self._settled.notify_all()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        self.model.handle(message.topic, bytes(message.payload), retained=bool(message.retain))


# --------------------------------------------------------------------------------------------
# The command


def parse_broker(value: str, *, tls: bool = False) -> tuple[str, int]:
    """'host', 'host:1884', '[::1]:1883' -> (host, port); the port defaults to 1883 (8883 TLS)."""
    default = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"--broker {value!r}: expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""  # a bare IPv6 address has several colons and no port
    if not host:
        raise ValueError(f"--broker {value!r}: no host")
    if not port_text:
        return host, default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--broker {value!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _topic_id(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return check_id(value, what)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return check


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: seconds must be 0 or more")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `edge-agent dashboard` options."""
    parser.add_argument(
        "--broker",
        default=DEFAULT_BROKER,
        metavar="HOST[:PORT]",
        help=f"MQTT broker (default {DEFAULT_BROKER}; port 8883 when --tls has no port)",
    )
    parser.add_argument(
        "--site", type=_topic_id("site"), default=None, help="only this site (default: all)"
    )
    parser.add_argument(
        "--device",
        type=_topic_id("device"),
        default=None,
        help="only this device (default: all); a few devices get detailed panels",
    )
    parser.add_argument(
        "--base-topic", default=DEFAULT_BASE, help=f"topic prefix (default {DEFAULT_BASE})"
    )
    parser.add_argument("--username", default=None)
    parser.add_argument(
        "--password",
        default=None,
        help=f"with --username; default: ${PASSWORD_ENVS[0]} or ${PASSWORD_ENVS[1]} (which"
        " keeps it out of `ps`)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect with TLS")
    tls.add_argument("--ca-file", type=Path, default=None, help="CA to trust (default: system)")
    tls.add_argument("--cert-file", type=Path, default=None, help="client certificate")
    tls.add_argument("--key-file", type=Path, default=None, help="client certificate's key")
    parser.add_argument(
        "--once",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="collect for SECONDS, print one plain snapshot and exit (2: no broker)",
    )
    parser.add_argument(
        "--refresh",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="screen refresh interval (default 1)",
    )
    parser.add_argument(
        "--layout",
        choices=["auto", "panels", "table"],
        default="auto",
        help=f"panels per device, a one-line-per-device table, or auto (panels up to"
        f" {DETAIL_LIMIT} devices)",
    )


def feed_settings(args: argparse.Namespace) -> FeedSettings:
    """FeedSettings from parsed options and the environment; ValueError says what is wrong."""
    host, port = parse_broker(args.broker, tls=args.tls)
    base = args.base_topic
    if not base or any(char in base for char in "+#") or base.endswith("/"):
        raise ValueError(f"--base-topic {base!r} must not be empty, end in '/' or use + #")
    if args.password is not None and args.username is None:
        raise ValueError("--password needs --username (MQTT sends no password alone)")
    password = args.password
    if password is None and args.username is not None:
        # Only with a user name: the daemon's environment may hold its password on a machine
        # where the dashboard connects anonymously, and that must not stop it.
        password = next((os.environ[name] for name in PASSWORD_ENVS if os.environ.get(name)), None)
    tls_files = {
        "--ca-file": args.ca_file,
        "--cert-file": args.cert_file,
        "--key-file": args.key_file,
    }
    if not args.tls and any(tls_files.values()):
        raise ValueError("--ca-file, --cert-file and --key-file need --tls")
    for option, path in tls_files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{option} {path}: no such file")
    if (args.cert_file is None) != (args.key_file is None):
        raise ValueError("--cert-file and --key-file go together")
    return FeedSettings(
        host=host,
        port=port,
        base_topic=base,
        site=args.site or "+",
        device=args.device or "+",
        username=args.username,
        password=password,
        tls=args.tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )


def run(args: argparse.Namespace) -> int:
    """`edge-agent dashboard`: 0 when done (Ctrl-C, or after --once), 2 without a broker."""
    try:
        settings = feed_settings(args)
    except ValueError as error:
        print(f"edge-agent dashboard: {error}", file=sys.stderr)
        return EXIT_NO_BROKER
    model = FleetModel(
        settings.base_topic, broker=settings.label, subscription=settings.subscription
    )
    feed = FleetFeed(settings, model, reconnect=args.once is None)
    if args.once is not None:
        return _run_once(feed, model, args.once, args.layout)
    return _run_live(feed, model, args.refresh, args.layout)


def _run_once(feed: FleetFeed, model: FleetModel, seconds: float, layout: str) -> int:
    try:
        failure = feed.connect()
        if failure is not None:
            print(f"edge-agent dashboard: {failure}", file=sys.stderr)
            return EXIT_NO_BROKER
        time.sleep(seconds)  # messages arrive on paho's thread meanwhile
        view = model.snapshot()
    finally:
        feed.close()
    # A plain print: no Live, no cursor movement; colours only when stdout is a terminal.
    Console(highlight=False).print(render(view, layout))
    return 0


def _run_live(feed: FleetFeed, model: FleetModel, refresh_s: float, layout: str) -> int:
    feed.start()
    console = Console(highlight=False)
    refresh_s = max(refresh_s, 0.1)
    try:
        with Live(
            render(model.snapshot(), layout),
            console=console,
            auto_refresh=False,
            screen=True,
            redirect_stderr=False,
        ) as live:
            while True:
                time.sleep(refresh_s)
                live.update(render(model.snapshot(), layout), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        feed.close()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-agent dashboard", description="live view of edge-agent displays over MQTT"
    )
    add_arguments(parser)
    return run(parser.parse_args(None if argv is None else list(argv)))


if __name__ == "__main__":
    sys.exit(main())
