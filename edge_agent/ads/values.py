"""The plain values of the ads stage: what it takes (settings), what passes between its
parts (rules -> decision -> scheduler -> player), and what it hands on (plays, decisions)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from edge_agent.segments import DEFAULT_BRACKETS, Brackets

# What shows the ads: the kiosk web page, or nothing (an external player follows MQTT).
PlayerKind = Literal["web", "none"]


@dataclass(frozen=True, slots=True)
class AdsSettings:
    """Everything the ads stage needs from the configuration."""

    rules: Path  # the rule table, re-read when it changes
    last_good: Path | None = None  # where the last good rules are kept; None: nowhere
    brackets: Brackets = DEFAULT_BRACKETS  # the age brackets rules may name
    player: PlayerKind = "web"
    web_host: str = "127.0.0.1"  # the kiosk page (player "web")
    web_port: int = 8765
    min_segment_size: int = 5  # play audiences fold smaller segments into "other"
    reload_check_s: float = 1.0


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


class Outcome(StrEnum):
    CHOSEN = "chosen"
    LOST_TURN = "lost_turn"  # matched, same priority as the winner, not its share-of-voice turn
    OUTRANKED = "outranked"  # matched, a higher priority rule matched too
    NO_MATCH = "no_match"  # the audience does not fit
    MINOR_PRESENT = "minor_present"  # targets gender/age while a possible minor is present
    STRETCH_LIMIT = "stretch_limit"  # held the screen for its max_s
    CAPPED = "capped"  # max_per_hour reached
    COOLING_DOWN = "cooling_down"
    OFF_SCHEDULE = "off_schedule"  # outside its days, times or dates
    DISABLED = "disabled"


class DecisionKind(StrEnum):
    RULE = "rule"  # a rule won
    DEFAULT = "default"  # nobody there or nothing matched: the default playlist
    NEUTRAL = "neutral"  # a possible minor is present and nothing untargeted matched


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    rule_id: str
    priority: int
    outcome: Outcome
    detail: str  # why, in words


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    rule_id: str | None
    reason: str  # one line: why this, now
    verdicts: tuple[RuleVerdict, ...]  # one per rule, in file order
    people: int
    viewers: int
    possible_minor: bool
    targets_people: bool  # the winning rule matches on gender or age
    contenders: tuple[str, ...]  # the matching rules of the winner's priority (share of voice)
    local_time: dt.datetime  # the time the rules were evaluated at, in the table's timezone


@dataclass(frozen=True, slots=True)
class PlayStart:
    """What the player must show from now on, until the next `PlayStart`."""

    play_id: str  # unique (uuid4 hex); the matching PlayEvent carries the same id
    creative: Creative
    rule_id: str | None  # None: the default or neutral playlist
    started_wall: float  # time.time() when the scheduler decided
    reason: str  # one line a marketer can read: why this creative, now

    def to_json(self, decision: Decision) -> dict[str, object]:
        """The start of a play and the decision behind it, for the log."""
        return {
            "type": "play_start",
            "play_id": self.play_id,
            "creative_id": self.creative.creative_id,
            "rule_id": self.rule_id,
            "decision": decision.kind.value,
            "reason": self.reason,
            "started_wall": self.started_wall,
        }


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

    def to_json(self) -> dict[str, object]:
        """Proof of play as one JSON object, for the log."""
        return {"type": "play_event", **dataclasses.asdict(self)}
