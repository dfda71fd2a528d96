"""Keeps the segment counts of the JSON Schemas in `schemas/` generated from the vocabulary.

The schemas are hand-written, except for one part: the `patternProperties` that admit the
flat segment counts (`passers_by_female_20_34`, `people_other`) of the messages that carry
them. That part comes from `edge_agent.segments.KEY_PATTERN`, so a change to the segment
vocabulary changes the published contract with it:

    python -m edge_agent.telemetry.schema_files     # rewrite schemas/*.schema.json

A test keeps the files equal to what this module renders. The pattern admits any age
brackets, because each display configures its own and one contract serves them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_agent.segments import KEY_PATTERN

SCHEMAS = Path(__file__).resolve().parent / "schemas"

# The segment counts each message type carries, as the prefixes of their keys.
SEGMENT_COUNTS: dict[str, tuple[str, ...]] = {
    "audience_report": ("passers_by", "viewers", "mix_passers_by", "mix_viewers"),
    "audience_today": ("passers_by", "viewers"),
    "ads_play": ("people",),
}


def segment_pattern(prefixes: tuple[str, ...]) -> str:
    """The regular expression of a segment count's key: '^people_(...)$'."""
    prefix = prefixes[0] if len(prefixes) == 1 else f"({'|'.join(prefixes)})"
    return f"^{prefix}_({KEY_PATTERN})$"


def schema_path(message_type: str) -> Path:
    return SCHEMAS / f"{message_type}.schema.json"


def render(message_type: str) -> str:
    """The schema file of `message_type` with its segment counts as the vocabulary says."""
    schema: dict[str, Any] = json.loads(schema_path(message_type).read_text(encoding="utf-8"))
    schema["patternProperties"] = {
        segment_pattern(SEGMENT_COUNTS[message_type]): {"type": "integer", "minimum": 0}
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_all() -> list[Path]:
    """Rewrite every schema whose segment counts are out of date; the paths written."""
    written = []
    for message_type in SEGMENT_COUNTS:
        path = schema_path(message_type)
        text = render(message_type)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(f"wrote {path}")
