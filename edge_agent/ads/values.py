"""The plain values that pass between the ads stages: rules -> decision -> scheduler -> player."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class Creative:
    """One piece of media the screen can show."""

    creative_id: str
    path: Path  # absolute, resolved against the rules file's folder
    kind: MediaKind
    duration_s: float  # how long one play lasts: given for images, read from the file for videos


@dataclass(frozen=True, slots=True)
class PlayStart:
    """What the player must show from now on, until the next `PlayStart`."""

    play_id: str  # unique (uuid4 hex); the matching PlayEvent carries the same id
    creative: Creative
    rule_id: str | None  # None: the default or neutral playlist
    started_wall: float  # time.time() when the scheduler decided
    reason: str  # one line a marketer can read: why this creative, now


class PlayEnd(StrEnum):
    COMPLETED = "completed"  # ran its full duration
    PREEMPTED = "preempted"  # a higher priority decision took over (the rule allowed it)
    STRETCH_LIMIT = "stretch_limit"  # its rule reached max_s
    MINOR_PRESENT = "minor_present"  # a targeted play cut because a possible minor appeared
    SHUTDOWN = "shutdown"  # the daemon stopped


@dataclass(frozen=True, slots=True)
class PlayAudience:
    """Who was in front of the screen during one play: counts only."""

    people: int  # different people present at some point of the play
    viewers: int  # of them, those who looked at the screen during it
    peak_people: int  # most people present at once
    attention_s: float  # seconds spent looking at the screen during the play, all together
    segments: dict[str, int]  # people by "gender/bracket"; small counts folded into "other"


@dataclass(frozen=True, slots=True)
class PlayEvent:
    """Proof of play: one per `PlayStart`, emitted when that play ends."""

    play_id: str
    creative_id: str
    rule_id: str | None
    decision: str  # "rule", "default" or "neutral"
    reason: str
    started_wall: float
    ended_wall: float
    duration_s: float
    ended_by: PlayEnd
    audience: PlayAudience
    rules_version: str  # RuleTable.version_id of the rules that made the decision
