"""The JSON payloads: flat, timestamped, versioned, one function per message type.

Every message starts with the same envelope:

    {"schema_version": 1, "id": "9f1c…", "type": "audience_report",
     "site": "berlin-mitte", "device": "door-left",
     "ts": "2026-11-23T10:15:00.123Z", "ts_ms": 1795428900123, …}

- `id` is unique per message and stays the same when the outbox sends a message again, so a
  consumer drops duplicates by it.
- `ts` (ISO 8601, UTC) and `ts_ms` (Unix milliseconds) say when the message was made, not when
  it was sent: a report replayed after an outage keeps its own time.
- Everything else is one level deep: numbers, text, true/false, null. Segments become keys
  (`passers_by_female_20_34`, `viewers_male_55_plus`, `passers_by_other`) so Telegraf, Grafana
  and Node-RED read every count without nested extraction.

`schema_version` changes only when a field changes meaning or goes away; new fields may appear
within a version, so consumers should ignore keys they do not know. The JSON Schemas in
`schemas/` are the contract; the tests validate real messages against them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from edge_agent import __version__
from edge_agent.ads.values import Decision, PlayEvent, PlayStart
from edge_agent.audience.values import AudienceMix, AudienceReport, DurationStats
from edge_agent.segments import flat_segments

SCHEMA_VERSION = 1

Payload = dict[str, Any]


def new_id() -> str:
    return uuid.uuid4().hex


def iso(wall: float) -> str:
    """2026-11-23T10:15:00.123Z"""
    moment = dt.datetime.fromtimestamp(wall, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(payload: Payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def envelope(message_type: str, site: str, device: str, wall: float) -> Payload:
    return {
        "schema_version": SCHEMA_VERSION,
        "id": new_id(),
        "type": message_type,
        "site": site,
        "device": device,
        "ts": iso(wall),
        "ts_ms": round(wall * 1000),
    }


def _durations(prefix: str, stats: DurationStats) -> Payload:
    return {
        f"{prefix}_mean_s": stats.mean_s,
        f"{prefix}_median_s": stats.median_s,
        f"{prefix}_p90_s": stats.p90_s,
        f"{prefix}_max_s": stats.max_s,
    }


# --------------------------------------------------------------------------------------------
# States (retained)


def availability(state: str, site: str, device: str, wall: float, started_wall: float) -> Payload:
    """state: online | stopped | offline."""
    return {
        **envelope("availability", site, device, wall),
        "state": state,
        "version": __version__,
        "started": iso(started_wall),
    }


PRIVACY_STATEMENT = (
    "This display estimates the age bracket and gender of faces in front of it, on this"
    " device, to choose ads and to count its audience. Camera images and face crops exist"
    " only in this device's memory for a fraction of a second: they are never stored and"
    " never sent. No face is recognised or matched to a person. What leaves the device are"
    " counts per time window, and any group smaller than {k} people is merged into 'other'."
)


def privacy(
    site: str,
    device: str,
    wall: float,
    *,
    min_segment_size: int,
    window_s: float,
    controller: str | None = None,
    contact: str | None = None,
) -> Payload:
    """`controller` and `contact`: who is responsible and whom to ask (config `privacy`)."""
    return {
        **envelope("privacy", site, device, wall),
        "statement": PRIVACY_STATEMENT.format(k=min_segment_size),
        "controller": controller,
        "contact": contact,
        "measures": "passers-by, viewers, dwell and attention time, estimated gender and age"
        " bracket",
        "min_segment_size": min_segment_size,
        "window_s": window_s,
        "images_stored": False,
        "images_sent": False,
        "face_recognition": False,
        "per_person_data_sent": False,
    }


def audience_current(
    site: str, device: str, wall: float, *, present: int, viewers_now: int
) -> Payload:
    # Only totals: who they are (segments) would single people out at these numbers.
    return {
        **envelope("audience_current", site, device, wall),
        "present": present,
        "viewers_now": viewers_now,
    }


def audience_today(
    site: str,
    device: str,
    wall: float,
    *,
    date: dt.date,
    passers_by: int,
    viewers: int,
    segments: Mapping[str, int],
    viewer_segments: Mapping[str, int],
) -> Payload:
    return {
        **envelope("audience_today", site, device, wall),
        "date": date.isoformat(),
        "passers_by": passers_by,
        "viewers": viewers,
        **flat_segments("passers_by", segments),
        **flat_segments("viewers", viewer_segments),
    }


def ads_playing(site: str, device: str, wall: float, play: PlayStart) -> Payload:
    return {
        **envelope("ads_playing", site, device, wall),
        "play_id": play.play_id,
        "creative_id": play.creative.creative_id,
        "media": play.creative.kind.value,
        "rule_id": play.rule_id,
        "reason": play.reason,
        "started": iso(play.started_wall),
    }


def stats(site: str, device: str, wall: float, values: Mapping[str, Any]) -> Payload:
    """`values`: flat numbers and flags from the daemon's stats window (see the schema)."""
    return {**envelope("stats", site, device, wall), **values}


# --------------------------------------------------------------------------------------------
# Records (through the outbox)


def audience_report(site: str, device: str, report: AudienceReport) -> Payload:
    return {
        **envelope("audience_report", site, device, report.window_end_wall),
        "window_start": iso(report.window_start_wall),
        "window_end": iso(report.window_end_wall),
        "window_s": round(report.window_end_wall - report.window_start_wall, 3),
        "passers_by": report.passers_by,
        "viewers": report.viewers,
        **_durations("dwell", report.dwell),
        **_durations("attention", report.attention),
        "min_segment_size": report.min_segment_size,
        **flat_segments("passers_by", report.segments),
        **flat_segments("viewers", report.viewer_segments),
        **_mix(report.mix),
    }


def _mix(mix: AudienceMix | None) -> Payload:
    """The longer span's mix, on the report that closes it (`audience.mix_window_s`)."""
    if mix is None:
        return {}
    return {
        "mix_window_start": iso(mix.window_start_wall),
        "mix_window_end": iso(mix.window_end_wall),
        "mix_window_s": round(mix.window_end_wall - mix.window_start_wall, 3),
        "mix_passers_by": mix.passers_by,
        "mix_viewers": mix.viewers,
        **flat_segments("mix_passers_by", mix.segments),
        **flat_segments("mix_viewers", mix.viewer_segments),
    }


def ads_play(site: str, device: str, event: PlayEvent) -> Payload:
    audience = event.audience
    return {
        **envelope("ads_play", site, device, event.ended_wall),
        "play_id": event.play_id,
        "creative_id": event.creative_id,
        "rule_id": event.rule_id,
        "decision": event.decision,
        "reason": event.reason,
        "started": iso(event.started_wall),
        "ended": iso(event.ended_wall),
        "duration_s": round(event.duration_s, 3),
        "ended_by": event.ended_by.value,
        "rules_version": event.rules_version,
        "people": audience.people,
        "viewers": audience.viewers,
        "peak_people": audience.peak_people,
        "attention_s": round(audience.attention_s, 2),
        **flat_segments("people", audience.segments),
    }


def ads_decision(site: str, device: str, play: PlayStart, decision: Decision) -> Payload:
    return {
        **envelope("ads_decision", site, device, play.started_wall),
        "play_id": play.play_id,
        "creative_id": play.creative.creative_id,
        "rule_id": decision.rule_id,
        "decision": decision.kind.value,
        "reason": decision.reason,
        "people": decision.people,
        "viewers": decision.viewers,
        "possible_minor": decision.possible_minor,
        "targets_people": decision.targets_people,
        "contenders": ",".join(decision.contenders),
        "local_time": decision.local_time.isoformat(timespec="seconds"),
    }


def error(
    site: str,
    device: str,
    wall: float,
    *,
    kind: str,
    message: str,
    file: str | None = None,
    line: int | None = None,
    key: str | None = None,
    problems: int = 1,
    counts: Mapping[str, int | float] | None = None,
) -> Payload:
    """kind: rules_invalid | source_lost | source_back | disk_refused | disk_back (see the
    schema). `counts`: the flat numbers of a disk event (kept in memory, dropped by kind)."""
    return {
        **envelope("error", site, device, wall),
        "kind": kind,
        "message": message,
        "file": file,
        "line": line,
        "key": key,
        "problems": problems,
        **(counts or {}),
    }
