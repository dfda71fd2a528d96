"""The gender x age-bracket vocabulary: one home for segment names and their published keys.

    brackets = Brackets((13, 20, 35, 55))      # 0-12, 13-19, 20-34, 35-54, 55+
    brackets.of(27.5)                          # "20-34"
    segment_name(Gender.FEMALE, "20-34")       # "female/20-34"
    segment_key("male/55+")                    # "male_55_plus"
    parse_segment_key("male_55_plus")          # SegmentName("male/55+", "male", "55+")
    fold_small_segments({"female/20-34": 2, "male/20-34": 7}, 5)  # {"male/20-34": 7, "other": 2}

A person's segment is their gender and age bracket, or `unknown` when either is unknown.
Before anything leaves a stage, segments with fewer people than the configured minimum fold
into `other`, so no small group can be singled out. On MQTT a segment becomes a flat key
(`female_20_34`), which the payloads, Home Assistant discovery, the dashboard and the JSON
Schemas (`KEY_PATTERN`) all take from here: nothing else builds or parses these names.

The bracket edges are configured per display (`vision.age_brackets`); `DEFAULT_EDGES` is the
one place the default scheme is written.
"""

from __future__ import annotations

import bisect
import itertools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

# Lower edges of the brackets after the first, in years: 0-12, 13-19, 20-34, 35-54, 55+.
DEFAULT_EDGES: tuple[int, ...] = (13, 20, 35, 55)

OTHER = "other"  # small segments folded together before publishing
UNKNOWN = "unknown"  # gender or age bracket not known


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    UNKNOWN = "unknown"


# The genders a segment can have; the order is the order they are listed and shown in.
GENDERS: tuple[Gender, ...] = (Gender.FEMALE, Gender.MALE)


def gender_of(p_female: float, margin: float) -> Gender:
    """Female or male only when p_female is at least `margin` away from a coin toss."""
    if p_female >= 0.5 + margin:
        return Gender.FEMALE
    if p_female <= 0.5 - margin:
        return Gender.MALE
    return Gender.UNKNOWN


@dataclass(frozen=True, slots=True)
class Brackets:
    """Age brackets from their lower edges: (13, 20, 35, 55) gives 0-12, 13-19, 20-34, 35-54
    and 55+. ValueError unless the edges are positive and increasing."""

    edges: tuple[int, ...] = DEFAULT_EDGES
    labels: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        edges = tuple(self.edges)
        if (
            not edges
            or edges[0] <= 0
            or any(high <= low for low, high in itertools.pairwise(edges))
        ):
            raise ValueError(f"bracket edges must be increasing positive ages, got {self.edges}")
        lows = (0, *edges)
        labels = [f"{low}-{high - 1}" for low, high in zip(lows, edges, strict=False)]
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "labels", (*labels, f"{edges[-1]}+"))

    def of(self, age_years: float) -> str:
        """The bracket of an age: with the default edges 12.9 is in 0-12, 13.0 in 13-19."""
        return self.labels[bisect.bisect_right(self.edges, age_years)]


DEFAULT_BRACKETS = Brackets()


def bracket_order(bracket: str) -> tuple[int, str]:
    """Sorts bracket labels by their lowest age (0-12 before 13-19 before 100+), whatever
    brackets they came from."""
    low = bracket.split("-")[0].rstrip("+")
    return (int(low) if low.isdigit() else sys.maxsize, bracket)


# --------------------------------------------------------------------------------------------
# Segment names ("female/20-34", "other", "unknown")


class SegmentName(NamedTuple):
    name: str  # "female/20-34", "male/55+", "other", "unknown"
    gender: str | None  # None for other and unknown
    bracket: str | None


def segment_name(gender: str, bracket: str | None) -> str:
    """ "female/20-34"; "unknown" unless both gender and age bracket are known."""
    if gender not in GENDERS or not bracket:
        return UNKNOWN
    return f"{gender}/{bracket}"


def segment_names(brackets: Brackets) -> tuple[str, ...]:
    """Every name a count may have with these brackets: genders x brackets, other, unknown."""
    named = (segment_name(gender, label) for gender in GENDERS for label in brackets.labels)
    return (*named, OTHER, UNKNOWN)


def fold_small_segments(counts: Mapping[str, int], minimum: int) -> dict[str, int]:
    """Segments with fewer than `minimum` people go into "other"; sorted by name."""
    folded: dict[str, int] = {}
    for segment, count in counts.items():
        name = segment if count >= minimum else OTHER
        folded[name] = folded.get(name, 0) + count
    return dict(sorted(folded.items()))


# --------------------------------------------------------------------------------------------
# Flat keys ("female_20_34", "male_55_plus", "other"): what payloads carry

# One segment key, for the JSON Schemas' patternProperties (any brackets: each display
# chooses its own, and one published contract serves them all).
KEY_PATTERN = rf"({'|'.join(GENDERS)})_\d+_(\d+|plus)|{OTHER}|{UNKNOWN}"
_KEY = re.compile(
    rf"^(?:(?P<gender>{'|'.join(GENDERS)})_(?P<low>\d+)_(?P<high>\d+|plus)"
    rf"|(?P<rest>{OTHER}|{UNKNOWN}))$"
)


def segment_key(name: str) -> str:
    """'female/20-34' -> 'female_20_34'; 'male/55+' -> 'male_55_plus'; 'other' -> 'other'."""
    return name.replace("+", "_plus").replace("/", "_").replace("-", "_")


def parse_segment_key(key: str) -> SegmentName | None:
    """The segment a flat key names ('female_20_34' -> female/20-34); None if it names none."""
    match = _KEY.match(key)
    if match is None:
        return None
    if match["rest"]:
        return SegmentName(match["rest"], None, None)
    high = "+" if match["high"] == "plus" else f"-{match['high']}"
    bracket = f"{match['low']}{high}"
    return SegmentName(f"{match['gender']}/{bracket}", match["gender"], bracket)


def flat_segments(prefix: str, segments: Mapping[str, int]) -> dict[str, int]:
    """{'female/20-34': 3} -> {'PREFIX_female_20_34': 3}, sorted by segment name."""
    return {f"{prefix}_{segment_key(name)}": count for name, count in sorted(segments.items())}


def parse_flat_segment(key: str, prefixes: Iterable[str]) -> tuple[str, SegmentName] | None:
    """('passers_by', female/20-34) for 'passers_by_female_20_34' when 'passers_by' is one of
    the prefixes; None for a key that is no prefixed segment key."""
    for prefix in prefixes:
        if key.startswith(f"{prefix}_"):
            segment = parse_segment_key(key[len(prefix) + 1 :])
            if segment is not None:
                return prefix, segment
    return None
