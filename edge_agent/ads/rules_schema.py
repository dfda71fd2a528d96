"""The schema of the rules file (`ads/rules.yaml`): what a marketer may write, as pydantic
models. `rules_json_schema()` is what `edge-agent rules schema` prints for editors; the loader
(`ads/rules.py`) validates a file against these models and then cross-checks what a schema
cannot see."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GroupPolicy = Literal["any", "all", "majority", "attention"]
TargetGender = Literal["female", "male"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
VIDEO_SUFFIXES = frozenset({".webm", ".mp4", ".m4v", ".ogv", ".mkv"})

# Bounds that keep a check or a reload quick (each creative's media file is opened): far above
# what a screen plays, far below what a file of 1 MiB could otherwise list.
MAX_CREATIVES = 500
MAX_RULES = 500
MAX_PLAYLIST = 500

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# --------------------------------------------------------------------------------------------
# The file's schema


def _field(default: Any, title: str, description: str, **constraints: Any) -> Any:
    return Field(default, title=title, description=description, **constraints)


class RulesModel(BaseModel):
    """Frozen, unknown keys are errors, an empty mapping means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        return {} if data is None else data


class CreativeSpec(RulesModel):
    id: str = _field(
        ..., "Id", "Name rules and playlists use for this creative.", pattern=_ID_PATTERN
    )
    file: str = _field(
        ...,
        "File",
        "Image (png, jpg, webp, gif) or video (webm, mp4) file, relative to the rules file's"
        " folder.",
        min_length=1,
    )
    duration_s: float | None = _field(
        None,
        "Duration",
        "Seconds one play lasts. Required for images; for a video, null plays it once to its"
        " end (its length is read from the file).",
        gt=0,
        le=3600,
    )


class Range(RulesModel):
    min: float | None = _field(None, "At least", "Lower bound, inclusive; null: none.", ge=0)
    max: float | None = _field(None, "At most", "Upper bound, inclusive; null: none.", ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max:g}) is less than min ({self.min:g})")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def text(self, unit: str = "") -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:g}-{self.max:g}{unit}"
        if self.min is not None:
            return f">= {self.min:g}{unit}"
        return f"<= {self.max:g}{unit}" if self.max is not None else "any"


class AudienceMatch(RulesModel):
    gender: TargetGender | None = _field(
        None, "Gender", "Target people estimated female or male; null: any gender."
    )
    age: Range | None = _field(
        None,
        "Age",
        "Target people whose estimated age, in whole years, lies in this range"
        " (e.g. {min: 25, max: 39}); null: any age.",
    )
    brackets: tuple[str, ...] | None = _field(
        None,
        "Age brackets",
        "Target people in these age brackets, as the config names them (e.g. [20-34, 35-54]);"
        " null: any bracket.",
        min_length=1,
    )
    people: Range = _field(
        Range(min=1),
        "People present",
        "How many people must be in front of the screen. The default, at least 1, means the"
        " rule waits for an audience; {min: 0} lets it play to an empty room (dayparting).",
    )
    viewers: Range | None = _field(
        None,
        "Viewers",
        "How many of them must be looking at the screen right now; null: any number.",
    )
    min_attention_s: float = _field(
        0.0,
        "Least attention",
        "Seconds the targeted people (all of them together) must already have looked at the"
        " screen during this visit.",
        ge=0,
    )
    group_policy: GroupPolicy | None = _field(
        None,
        "Group policy",
        "How the people present decide a gender/age match: any (one of them matches), all"
        " (every one), majority (more than half), attention (those matching hold more than half"
        " of the attention seconds). null: the file's group_policy.",
    )

    @property
    def targets_people(self) -> bool:
        """Whether the rule matches on demographics (and so is targeting)."""
        return self.gender is not None or self.age is not None or self.brackets is not None


class TimeWindow(RulesModel):
    start: str = _field(..., "From", "Start time, HH:MM (24 h), inclusive.", alias="from")
    end: str = _field(
        ...,
        "To",
        "End time, HH:MM, exclusive. Earlier than `from` means the window passes midnight"
        " and belongs to the day it starts on.",
        alias="to",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 18:00 as the sexagesimal number 1080.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            value = f"{value // 60:02d}:{value % 60:02d}"
        if not isinstance(value, str) or not _CLOCK.match(value):
            raise ValueError("must be a time as HH:MM, 00:00 to 23:59")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError(
                "from and to are equal: an empty window (leave out `between` for all day)"
            )
        return self

    @property
    def start_time(self) -> dt.time:
        return dt.time.fromisoformat(self.start)

    @property
    def end_time(self) -> dt.time:
        return dt.time.fromisoformat(self.end)

    @property
    def passes_midnight(self) -> bool:
        return self.end_time < self.start_time


class DateRange(RulesModel):
    start: dt.date | None = _field(None, "From", "First day, inclusive (YYYY-MM-DD).", alias="from")
    end: dt.date | None = _field(None, "To", "Last day, inclusive (YYYY-MM-DD).", alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"to ({self.end}) is before from ({self.start})")
        return self


class When(RulesModel):
    days: tuple[Weekday, ...] | None = _field(
        None, "Days", "Days of the week, e.g. [mon, tue, wed]; null: every day.", min_length=1
    )
    between: tuple[TimeWindow, ...] | None = _field(
        None,
        "Time windows",
        "Times of day, e.g. [{from: '17:00', to: '21:00'}, {from: '22:00', to: '02:00'}];"
        " null: all day.",
        min_length=1,
    )
    dates: DateRange | None = _field(None, "Dates", "A date range; null: any date.")


class PlayLimits(RulesModel):
    min_s: float = _field(
        5.0,
        "Shortest play",
        "Seconds a play of this rule is never cut before, even by a higher priority rule.",
        ge=0,
    )
    max_s: float | None = _field(
        None,
        "Longest stretch",
        "Seconds this rule may hold the screen in one stretch (its creatives back to back);"
        " when reached the play ends and the cooldown starts. null: no limit.",
        gt=0,
    )
    interruptible: bool = _field(
        False,
        "Interruptible",
        "A higher priority rule may cut a play of this rule once min_s has passed; false: its"
        " plays run to their end.",
    )
    cooldown_s: float = _field(
        0.0,
        "Cooldown",
        "Seconds after a stretch of this rule ends before it may play again.",
        ge=0,
    )
    max_per_hour: int | None = _field(
        None,
        "Frequency cap",
        "Most plays of this rule that may start in any 60 minutes; null: no cap.",
        ge=1,
    )


class Rule(RulesModel):
    id: str = _field(
        ..., "Id", "Name of the rule in logs, play events and `rules explain`.", pattern=_ID_PATTERN
    )
    description: str | None = _field(None, "Description", "What the rule is for, for people.")
    enabled: bool = _field(True, "Enabled", "false keeps the rule in the file but unused.")
    priority: int = _field(
        0, "Priority", "Among matching rules the highest priority wins.", ge=-1000, le=1000
    )
    weight: float = _field(
        1.0,
        "Weight",
        "Share of voice among matching rules of equal priority: a rule with weight 2 gets"
        " twice the plays of one with weight 1.",
        gt=0,
        le=1000,
    )
    creatives: tuple[str, ...] = _field(
        ...,
        "Creatives",
        "Ids of the creatives this rule plays, in turn.",
        min_length=1,
        max_length=MAX_PLAYLIST,
    )
    audience: AudienceMatch = _field(
        AudienceMatch(), "Audience", "Who must be in front of the screen."
    )
    when: When = _field(When(), "When", "When the rule applies, in the file's timezone.")
    play: PlayLimits = _field(PlayLimits(), "Play limits", "How long and how often it plays.")


class MinorsPolicy(RulesModel):
    protect: bool = _field(
        True,
        "Protect minors",
        "While anyone present may be under 18, rules that target gender or age are skipped"
        " and rules without demographics or the neutral playlist play instead. false turns"
        " this protection off (check the law where the screen stands first).",
    )
    possible_minor_below_age: float = _field(
        25.0,
        "Possible minor below",
        "A person whose estimated age is below this counts as a possible minor. Above 18 on"
        " purpose: age estimates are off by about 6 years on average, and children are"
        " sometimes estimated in their twenties (models/MODELS.md).",
        ge=18,
        le=40,
    )
    unknown_age_is_possible_minor: bool = _field(
        True,
        "Unknown age is a possible minor",
        "Count a person whose age is not yet estimated (turned away, too far) as a possible minor.",
    )
    cut_targeted_play: bool = _field(
        True,
        "Cut targeted plays",
        "End a demographically targeted play at once when a possible minor appears, whatever"
        " the rule's min_s and interruptible say.",
    )
    playlist: tuple[str, ...] | None = _field(
        None,
        "Neutral playlist",
        "Creatives to play in turn while a possible minor is present and no rule without"
        " demographics applies; null: the default playlist.",
        min_length=1,
    )


class RulesFile(RulesModel):
    """The whole `rules.yaml`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        title="edge-agent ad rules",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = _field(1, "Version", "Version of this file's format.")
    timezone: str | None = _field(
        None,
        "Timezone",
        "IANA timezone the `when` times are in, e.g. Europe/Berlin; null: the device's.",
    )
    group_policy: GroupPolicy = _field(
        "majority",
        "Group policy",
        "Default for every rule's audience.group_policy: any, all, majority or attention.",
    )
    default_min_play_s: float = _field(
        3.0,
        "Shortest default play",
        "Seconds a default or neutral playlist item shows before a matching rule may cut it.",
        ge=0,
    )
    minors: MinorsPolicy = _field(MinorsPolicy(), "Minors", "No targeting of possible minors.")
    default_playlist: tuple[str, ...] = _field(
        ...,
        "Default playlist",
        "Creatives played in turn when nobody is there or no rule matches.",
        min_length=1,
        max_length=MAX_PLAYLIST,
    )
    creatives: tuple[CreativeSpec, ...] = _field(
        ...,
        "Creatives",
        "Every piece of media the rules may show.",
        min_length=1,
        max_length=MAX_CREATIVES,
    )
    rules: tuple[Rule, ...] = _field(
        (), "Rules", "Targeting rules; see `edge-agent rules explain`.", max_length=MAX_RULES
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Europe' is a folder
                raise ValueError("not an IANA timezone name, e.g. Europe/Berlin") from None
        return value


def rules_json_schema() -> dict[str, Any]:
    return RulesFile.model_json_schema(by_alias=True)
