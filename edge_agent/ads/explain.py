"""`edge-agent rules explain`: a made-up audience in, the decision and every rule's verdict out.

people = parse_people(["female:30", "male:8:away"])
print(format_decision(decide(table, people, at), table))
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from edge_agent.ads.values import Decision, DecisionKind, Outcome
from edge_agent.audience.values import NO_ESTIMATE, PersonEstimate, PersonNow
from edge_agent.segments import Brackets, Gender

if TYPE_CHECKING:  # `rules explain`'s argument parser imports this module: keep it light
    from edge_agent.ads.rules import RuleTable

PERSON_FORMAT = "GENDER:AGE[:away][:ATTENTION_S]"
# The ages and attention a made-up person may have: what a camera could see.
MAX_AGE_YEARS = 120.0
MAX_ATTENTION_S = 24 * 3600.0


def make_person(
    track_id: int,
    gender: str | None,
    age: float | None,
    brackets: Brackets,
    *,
    looking: bool = True,
    attention_s: float = 2.0,
) -> PersonNow:
    """A pretend person with a final estimate, as the tracker would report them."""
    if gender is None and age is None:
        estimate = NO_ESTIMATE
    else:
        estimate = PersonEstimate(
            gender=Gender(gender or "unknown"),
            p_female=None if gender is None else float(gender == "female"),
            age_years=age,
            age_bracket=None if age is None else brackets.of(age),
            samples=1,
            final=True,
        )
    return PersonNow(track_id, estimate, looking, attention_s if looking else 0.0, 5.0)


def parse_person(text: str, track_id: int, brackets: Brackets, attention_s: float) -> PersonNow:
    """`female:30`, `male:8:away`, `unknown:?`, `female:45:6.5` (6.5 s of attention)."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"--person {text!r}: expected {PERSON_FORMAT}")
    gender = parts[0].lower()
    if gender not in (*Gender, "?"):
        raise ValueError(f"--person {text!r}: gender is female, male or unknown")
    try:
        age = None if parts[1] in ("?", "unknown") else float(parts[1])
    except ValueError:
        raise ValueError(f"--person {text!r}: age is a number of years or ?") from None
    if age is not None and not (0 <= age <= MAX_AGE_YEARS):  # also false for nan
        raise ValueError(f"--person {text!r}: age is out of range: 0 to {MAX_AGE_YEARS:g}")
    looking = True
    for extra in parts[2:]:
        if extra == "away":
            looking = False
            continue
        try:
            attention_s = float(extra)
        except ValueError:
            raise ValueError(f"--person {text!r}: expected {PERSON_FORMAT}") from None
        if not (0 <= attention_s <= MAX_ATTENTION_S):
            message = f"attention is out of range: 0 to {MAX_ATTENTION_S:g} seconds"
            raise ValueError(f"--person {text!r}: {message}")
    known_gender = None if gender in (Gender.UNKNOWN, "?") else gender
    return make_person(
        track_id, known_gender, age, brackets, looking=looking, attention_s=attention_s
    )


_OUTCOME_WORDS = {
    Outcome.CHOSEN: "CHOSEN",
    Outcome.LOST_TURN: "lost its turn",
    Outcome.OUTRANKED: "outranked",
    Outcome.NO_MATCH: "no match",
    Outcome.MINOR_PRESENT: "minor present",
    Outcome.STRETCH_LIMIT: "max play time",
    Outcome.CAPPED: "capped",
    Outcome.COOLING_DOWN: "cooling down",
    Outcome.OFF_SCHEDULE: "off schedule",
    Outcome.DISABLED: "disabled",
}


def format_decision(decision: Decision, table: RuleTable) -> str:
    zone = decision.local_time.tzname() or "local time"
    present = (
        "nobody present"
        if not decision.people
        else (f"{decision.people} present, {decision.viewers} looking")
    )
    lines = [
        f"At {decision.local_time:%a %Y-%m-%d %H:%M} ({zone}), {present}",
        f"Rules: {table.source} (version {table.version_id})",
    ]
    if decision.possible_minor:
        lines.append("A possible minor is present: rules on gender/age are skipped.")
    lines.append("")
    if decision.kind is DecisionKind.RULE:
        rule = next(r for r in table.rules if r.id == decision.rule_id)
        plays = ", ".join(rule.creatives)
        lines.append(f"Decision: rule {decision.rule_id}, plays {plays}")
    else:
        playlist = (
            table.neutral_playlist
            if decision.kind is DecisionKind.NEUTRAL
            else table.default_playlist
        )
        names = ", ".join(c.creative_id for c in playlist)
        lines.append(f"Decision: {decision.kind.value} playlist, plays {names}")
    lines.append(f"Why: {decision.reason}")
    if decision.verdicts:
        lines.append("")
        width = max(len("rule"), *(len(v.rule_id) for v in decision.verdicts))
        lines.append(f"{'rule':<{width}}  priority  {'verdict':<13}  why")
        for verdict in decision.verdicts:
            lines.append(
                f"{verdict.rule_id:<{width}}  {verdict.priority:>8}  "
                f"{_OUTCOME_WORDS[verdict.outcome]:<13}  {verdict.detail}"
            )
    return "\n".join(lines)


def decision_json(decision: Decision) -> dict[str, Any]:
    data = dataclasses.asdict(decision)
    data["local_time"] = decision.local_time.isoformat()
    return data
