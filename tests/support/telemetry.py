"""Helpers for the telemetry tests: the published JSON Schemas as a validator, real values."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from edge_agent.audience.values import AudienceMix, AudienceReport, DurationStats

SCHEMAS = resources.files("edge_agent.telemetry").joinpath("schemas")


def schema_names() -> list[str]:
    files = SCHEMAS.iterdir()
    return sorted(f.name.removesuffix(".schema.json") for f in files if f.name.endswith(".json"))


@cache
def _registry() -> Registry:
    resources_by_uri = []
    for name in schema_names():
        schema = json.loads(SCHEMAS.joinpath(f"{name}.schema.json").read_text())
        resources_by_uri.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources_by_uri)


def schema(name: str) -> dict[str, Any]:
    return json.loads(SCHEMAS.joinpath(f"{name}.schema.json").read_text())


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        schema(name), registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def problems(payload: bytes | dict[str, Any]) -> list[str]:
    """Every way the payload breaks the schema named by its own `type` ([] when valid)."""
    data = json.loads(payload) if isinstance(payload, bytes) else payload
    message_type = data.get("type")
    if message_type not in schema_names() or message_type == "envelope":
        return [f"no schema for type {message_type!r}"]
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator(message_type).iter_errors(data)
    ]


def report(
    end_wall: float,
    passers_by: int = 3,
    segments: dict[str, int] | None = None,
    window_s: float = 60.0,
    mix: AudienceMix | None = None,
) -> AudienceReport:
    segments = {"female/20-34": passers_by} if segments is None else segments
    return AudienceReport(
        window_start_wall=end_wall - window_s,
        window_end_wall=end_wall,
        passers_by=passers_by,
        viewers=min(passers_by, 1),
        segments=segments,
        viewer_segments={"other": min(passers_by, 1)},
        dwell=DurationStats.of([1.5, 2.5, 4.0][:passers_by]),
        attention=DurationStats.of([1.2]),
        min_segment_size=1,
        mix=mix,
    )


def mix(end_wall: float, segments: dict[str, int], span_s: float = 3600.0) -> AudienceMix:
    passers_by = sum(segments.values())
    return AudienceMix(
        window_start_wall=end_wall - span_s,
        window_end_wall=end_wall,
        passers_by=passers_by,
        viewers=min(passers_by, 1),
        segments=segments,
        viewer_segments={"other": min(passers_by, 1)},
    )
