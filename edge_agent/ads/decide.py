"""The decision: which rule (if any) the people in front of the screen get, now, and why.

A pure function of the rule table, the people present, the time and what the scheduler
remembers of past plays (`RuleState`), so that `edge-agent rules explain` and the running
daemon reach the same decision for the same inputs. Every rule gets a verdict: the winner,
and for every other rule the first reason it lost.

The order of the checks is the order of the verdicts' precedence:
  disabled -> outside its time -> cooling down -> frequency cap -> stretch limit
  -> minor present (rules on gender/age only) -> audience does not match
  -> outranked (a higher priority matched) -> lost the share-of-voice turn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge_agent.ads.rules import RuleTable
from edge_agent.ads.rules_schema import WEEKDAYS, AudienceMatch, MinorsPolicy, Rule, When
from edge_agent.ads.values import Decision, DecisionKind, Outcome, RuleVerdict
from edge_agent.audience.values import PersonNow

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class RuleState:
    """What the scheduler remembers of one rule (monotonic seconds)."""

    cooldown_until: float = -math.inf
    recent_starts: tuple[float, ...] = ()  # play starts in the last hour, oldest first
    credit: float = 0.0  # smooth weighted round robin: the rule's share-of-voice balance


@dataclass(frozen=True, slots=True)
class PlayContext:
    """The scheduler's memory, as the decision needs it."""

    now: float  # monotonic seconds
    rules: Mapping[str, RuleState]
    stretch_rule: str | None = None  # the rule holding the screen now, if any
    stretch_s: float = 0.0  # for how long it has held it


NO_HISTORY = PlayContext(0.0, {})


def decide(
    table: RuleTable,
    people: Sequence[PersonNow],
    at: dt.datetime,
    context: PlayContext = NO_HISTORY,
) -> Decision:
    """The decision for `people` at wall time `at` (aware, or naive meaning the table's zone)."""
    local = _localised(at, table)
    minor = table.minors.protect and minor_present(people, table.minors)
    viewers = sum(person.looking for person in people)
    verdicts: dict[str, RuleVerdict] = {}
    matching: list[Rule] = []
    for rule in table.rules:
        verdict = _screen(rule, table, people, local, context, minor)
        if verdict is None:
            matching.append(rule)
        else:
            verdicts[rule.id] = verdict
    winner = _pick(matching, context)
    top = [rule for rule in matching if winner is not None and rule.priority == winner.priority]
    if winner is not None:
        for rule in matching:
            if rule is winner:
                detail = _match_detail(rule, table, people)
                if len(top) > 1:
                    shares = ", ".join(f"{r.id} {r.weight:g}" for r in top)
                    detail += f"; its share-of-voice turn among equal priorities ({shares})"
                verdicts[rule.id] = RuleVerdict(rule.id, rule.priority, Outcome.CHOSEN, detail)
            elif rule.priority < winner.priority:
                verdicts[rule.id] = RuleVerdict(
                    rule.id,
                    rule.priority,
                    Outcome.OUTRANKED,
                    f"matched, but {winner.id} has priority {winner.priority} > {rule.priority}",
                )
            else:
                verdicts[rule.id] = RuleVerdict(
                    rule.id,
                    rule.priority,
                    Outcome.LOST_TURN,
                    f"matched with the same priority; weight {rule.weight:g} vs"
                    f" {winner.weight:g}: {winner.id} has the turn",
                )
    ordered = tuple(verdicts[rule.id] for rule in table.rules)
    summary = _audience_summary(people, viewers, minor)
    if winner is not None:
        kind, rule_id = DecisionKind.RULE, winner.id
        reason = f"rule {winner.id} (priority {winner.priority}): {verdicts[winner.id].detail}"
    elif minor:
        kind, rule_id = DecisionKind.NEUTRAL, None
        reason = "neutral playlist: a possible minor is present and no untargeted rule applies"
    else:
        kind, rule_id = DecisionKind.DEFAULT, None
        reason = (
            "default playlist: nobody there" if not people else "default playlist: no rule matched"
        )
    return Decision(
        kind=kind,
        rule_id=rule_id,
        reason=f"{reason} [{summary}]",
        verdicts=ordered,
        people=len(people),
        viewers=viewers,
        possible_minor=minor,
        targets_people=winner is not None and winner.audience.targets_people,
        contenders=tuple(rule.id for rule in top),
        local_time=local,
    )


def _localised(at: dt.datetime, table: RuleTable) -> dt.datetime:
    if table.timezone is None:
        return at.astimezone()  # naive means the device's local time, as astimezone reads it
    if at.tzinfo is None:
        return at.replace(tzinfo=table.timezone)
    return at.astimezone(table.timezone)


def minor_present(people: Sequence[PersonNow], minors: MinorsPolicy) -> bool:
    """Whether anyone present may be under 18, as the minors policy reads the estimates."""
    for person in people:
        age = person.estimate.age_years
        if age is None and minors.unknown_age_is_possible_minor:
            return True
        if age is not None and age < minors.possible_minor_below_age:
            return True
    return False


def _screen(
    rule: Rule,
    table: RuleTable,
    people: Sequence[PersonNow],
    local: dt.datetime,
    context: PlayContext,
    minor: bool,
) -> RuleVerdict | None:
    """The first reason `rule` cannot play now, or None when it matches."""

    def verdict(outcome: Outcome, detail: str) -> RuleVerdict:
        return RuleVerdict(rule.id, rule.priority, outcome, detail)

    if not rule.enabled:
        return verdict(Outcome.DISABLED, "enabled: false")
    off = _off_schedule(rule.when, local)
    if off is not None:
        return verdict(Outcome.OFF_SCHEDULE, off)
    state = context.rules.get(rule.id, RuleState())
    if context.now < state.cooldown_until and context.stretch_rule != rule.id:
        return verdict(
            Outcome.COOLING_DOWN,
            f"cooling down for {state.cooldown_until - context.now:.0f} s more",
        )
    cap = rule.play.max_per_hour
    if cap is not None:
        started = sum(1 for t in state.recent_starts if context.now - t < HOUR_S)
        if started >= cap:
            return verdict(Outcome.CAPPED, f"played {started} times in the last hour (cap {cap})")
    limit = rule.play.max_s
    if limit is not None and context.stretch_rule == rule.id and context.stretch_s >= limit:
        return verdict(
            Outcome.STRETCH_LIMIT,
            f"has held the screen for {context.stretch_s:.0f} s (max_s {limit:g})",
        )
    if minor and rule.audience.targets_people:
        return verdict(Outcome.MINOR_PRESENT, "targets gender/age and a possible minor is present")
    mismatch = _audience_mismatch(rule, table, people)
    if mismatch is not None:
        return verdict(Outcome.NO_MATCH, mismatch)
    return None


def _off_schedule(when: When, local: dt.datetime) -> str | None:
    """Why `local` is outside `when`, or None when inside. A window that passes midnight
    belongs to the day it starts on (Friday 22:00-02:00 includes Saturday 01:00)."""
    service_day = local.date()
    if when.between is not None:
        now = local.time()
        inside = None
        for window in when.between:
            start, end = window.start_time, window.end_time
            if (start <= now < end) or (window.passes_midnight and now >= start):
                inside = local.date()
            elif window.passes_midnight and now < end:
                inside = local.date() - dt.timedelta(days=1)
            if inside is not None:
                break
        if inside is None:
            windows = ", ".join(f"{w.start}-{w.end}" for w in when.between)
            return f"{local:%H:%M} is outside {windows}"
        service_day = inside
    if when.days is not None:
        day = WEEKDAYS[service_day.weekday()]
        if day not in when.days:
            return f"{day} is not one of {', '.join(when.days)}"
    if when.dates is not None:
        start, end = when.dates.start, when.dates.end
        if (start is not None and service_day < start) or (end is not None and service_day > end):
            return f"{service_day} is outside {start or '...'} to {end or '...'}"
    return None


def person_matches(match: AudienceMatch, person: PersonNow) -> bool:
    estimate = person.estimate
    if match.gender is not None and estimate.gender.value != match.gender:
        return False
    age = estimate.age_years
    if match.age is not None and (age is None or not match.age.holds(math.floor(age))):
        return False
    return match.brackets is None or estimate.age_bracket in match.brackets


def _audience_mismatch(rule: Rule, table: RuleTable, people: Sequence[PersonNow]) -> str | None:
    match = rule.audience
    if not match.people.holds(len(people)):
        return f"{_people(len(people))} present, needs {match.people.text()}"
    viewers = sum(person.looking for person in people)
    if match.viewers is not None and not match.viewers.holds(viewers):
        return f"{viewers} looking at the screen, needs {match.viewers.text()}"
    targeted = _targeted(match, people)
    if match.targets_people:
        policy = match.group_policy or table.group_policy
        matched, total, share = _group_share(match, people, policy)
        if not _group_holds(policy, matched, total, share):
            return (
                f"{matched} of {_people(total)} {_target_text(match)}"
                f" ({_policy_text(policy)} needed)"
            )
    attention = sum(person.attention_s for person in targeted)
    if attention < match.min_attention_s:
        return f"{attention:.1f} s of attention, needs {match.min_attention_s:g} s"
    return None


def _targeted(match: AudienceMatch, people: Sequence[PersonNow]) -> list[PersonNow]:
    if not match.targets_people:
        return list(people)
    return [person for person in people if person_matches(match, person)]


def _group_share(
    match: AudienceMatch, people: Sequence[PersonNow], policy: str
) -> tuple[int, int, float]:
    """How many people match, of how many, and the matching share of attention."""
    matched = [person_matches(match, person) for person in people]
    attention = [person.attention_s for person in people]
    total_attention = sum(attention)
    if policy == "attention" and total_attention > 0:
        share = sum(a for a, m in zip(attention, matched, strict=True) if m) / total_attention
    else:  # nobody has looked yet: every person weighs the same
        share = sum(matched) / len(people) if people else 0.0
    return sum(matched), len(people), share


def _group_holds(policy: str, matched: int, total: int, share: float) -> bool:
    if total == 0 or matched == 0:
        return False
    if policy == "any":
        return True
    if policy == "all":
        return matched == total
    return share > 0.5  # majority and attention


def _policy_text(policy: str) -> str:
    return {
        "any": "at least one",
        "all": "all of them",
        "majority": "more than half",
        "attention": "more than half of the attention",
    }[policy]


def _target_text(match: AudienceMatch) -> str:
    parts = []
    if match.gender is not None:
        parts.append(match.gender)
    if match.age is not None:
        parts.append(f"aged {match.age.text()}")
    if match.brackets is not None:
        parts.append(f"in {'/'.join(match.brackets)}")
    return " ".join(parts)


def _match_detail(rule: Rule, table: RuleTable, people: Sequence[PersonNow]) -> str:
    match = rule.audience
    if not match.targets_people:
        when = "now" if rule.when == When() else "in its time window"
        return f"no gender/age targeting, applies {when} ({_people(len(people))} present)"
    policy = match.group_policy or table.group_policy
    matched, total, share = _group_share(match, people, policy)
    detail = f"{matched} of {_people(total)} {_target_text(match)} ({_policy_text(policy)})"
    if policy == "attention":
        detail += f", {share:.0%} of the attention"
    return detail


def _pick(matching: list[Rule], context: PlayContext) -> Rule | None:
    """Highest priority; among equals, the rule with the most share-of-voice credit after
    this turn's top-up (smooth weighted round robin: exact shares, no randomness)."""
    if not matching:
        return None
    top_priority = max(rule.priority for rule in matching)
    top = [rule for rule in matching if rule.priority == top_priority]
    if len(top) == 1:
        return top[0]

    def credit(rule: Rule) -> float:
        return context.rules.get(rule.id, RuleState()).credit + rule.weight

    return max(top, key=credit)  # max() keeps the first of equals: file order breaks ties


def settle_turn(
    rules: Mapping[str, RuleState], contenders: Sequence[Rule], winner_id: str
) -> dict[str, RuleState]:
    """The credits after `winner_id` took a turn among `contenders` (equal-priority matches)."""
    updated = dict(rules)
    total = sum(rule.weight for rule in contenders)
    for rule in contenders:
        state = updated.get(rule.id, RuleState())
        credit = state.credit + rule.weight - (total if rule.id == winner_id else 0.0)
        updated[rule.id] = dataclasses.replace(state, credit=credit)
    return updated


def _audience_summary(people: Sequence[PersonNow], viewers: int, minor: bool) -> str:
    if not people:
        return "nobody present"
    text = f"{_people(len(people))} present, {viewers} looking"
    return text + ", possible minor" if minor else text


def _people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} people"
