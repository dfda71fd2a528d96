"""The play state machine: what is on screen, when it may change, and proof of every play.

    scheduler = AdScheduler(load_rules("ads/rules.yaml"))
    step = scheduler.tick(snapshot.people, time.monotonic(), time.time())
    if step.started: player.show(step.started)
    if step.ended: publish(step.ended)

States: nothing yet -> playing (a rule's creative, or a default/neutral playlist item) ->
playing ... A play ends when:
  - its duration is over (completed), and the next decision picks what follows;
  - a possible minor appears during a demographically targeted play (minor_present), when
    minors.cut_targeted_play is on;
  - its rule has held the screen for max_s (stretch_limit);
  - a better decision comes and the play allows a cut: default/neutral items after
    default_min_play_s, a rule's play after its min_s when it is interruptible, and only for
    a rule of higher priority (preempted).
Something is always on screen: the default playlist is never empty.

Every `PlayStart` is followed by exactly one `PlayEvent` with the same id, carrying the counts
of the people present during the play (folded into "other" below `min_segment_size`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.ads.decide import (
    HOUR_S,
    PlayContext,
    RuleState,
    decide,
    minor_present,
    settle_turn,
)
from edge_agent.ads.rules import RuleTable
from edge_agent.ads.rules_schema import Rule
from edge_agent.ads.values import (
    Creative,
    Decision,
    DecisionKind,
    PlayAudience,
    PlayEnd,
    PlayEvent,
    PlayStart,
)
from edge_agent.audience.values import PersonNow
from edge_agent.segments import fold_small_segments


@dataclass(frozen=True, slots=True)
class Step:
    """What one tick changed: at most one play ended and one started (with its decision)."""

    ended: PlayEvent | None = None
    started: PlayStart | None = None
    decision: Decision | None = None


NOTHING = Step()


@dataclass(slots=True)
class _Seen:
    attention_at_first_sight: float
    attention: float
    looked: bool
    segment: str


@dataclass(slots=True)
class _Playing:
    start: PlayStart
    decision: Decision
    rule: Rule | None
    rules_version: str
    started: float  # monotonic
    min_s: float
    interruptible: bool
    seen: dict[int, _Seen] = field(default_factory=dict)
    peak_people: int = 0

    @property
    def ends_at(self) -> float:
        return self.started + self.start.creative.duration_s

    def watch(self, people: Sequence[PersonNow]) -> None:
        self.peak_people = max(self.peak_people, len(people))
        for person in people:
            seen = self.seen.get(person.track_id)
            if seen is None:
                seen = _Seen(person.attention_s, person.attention_s, False, "")
                self.seen[person.track_id] = seen
            seen.attention = person.attention_s
            seen.looked = seen.looked or person.looking
            seen.segment = person.estimate.segment  # the latest estimate is the best one

    def audience(self, min_segment_size: int) -> PlayAudience:
        seen = self.seen.values()
        return PlayAudience(
            people=len(self.seen),
            viewers=sum(1 for s in seen if s.looked),
            peak_people=self.peak_people,
            attention_s=round(sum(s.attention - s.attention_at_first_sight for s in seen), 3),
            segments=fold_small_segments(Counter(s.segment for s in seen), min_segment_size),
        )


class AdScheduler:
    """Decides and times plays; a plain function of the ticks it is given (no clock, no
    threads), so tests drive it through hours of audience in milliseconds."""

    def __init__(self, table: RuleTable, *, min_segment_size: int = 5) -> None:
        self.table = table
        self.min_segment_size = min_segment_size
        self._rule_states: dict[str, RuleState] = {}
        self._next_creative: Counter[str] = Counter()  # per rule id / playlist: whose turn
        self._playing: _Playing | None = None
        self._stretch_rule: str | None = None
        self._stretch_started = 0.0

    @property
    def current(self) -> PlayStart | None:
        return None if self._playing is None else self._playing.start

    def replace_rules(self, table: RuleTable) -> None:
        """Take new rules from the next decision on; the current play runs on as decided."""
        self.table = table
        known = {rule.id for rule in table.rules}
        self._rule_states = {k: v for k, v in self._rule_states.items() if k in known}

    def context(self, now: float) -> PlayContext:
        stretch_s = now - self._stretch_started if self._stretch_rule is not None else 0.0
        return PlayContext(now, dict(self._rule_states), self._stretch_rule, stretch_s)

    def tick(self, people: Sequence[PersonNow], now: float, wall: float) -> Step:
        """Advance to monotonic time `now` (wall clock `wall`) with these people present."""
        playing = self._playing
        if playing is None:
            return self._start(people, now, wall, ended=None)
        playing.watch(people)
        if now >= playing.ends_at:
            return self._switch(people, now, wall, PlayEnd.COMPLETED)
        minors = self.table.minors
        if (
            playing.decision.targets_people
            and minors.protect
            and minors.cut_targeted_play
            and minor_present(people, minors)
        ):
            return self._switch(people, now, wall, PlayEnd.MINOR_PRESENT)
        if self._stretch_over(playing.rule, now):
            return self._switch(people, now, wall, PlayEnd.STRETCH_LIMIT)
        if playing.interruptible and now - playing.started >= playing.min_s:
            decision = decide(self.table, people, _wall_datetime(wall), self.context(now))
            if self._better(decision, playing):
                return self._switch(people, now, wall, PlayEnd.PREEMPTED, decision)
        return NOTHING

    def stop(self, now: float, wall: float) -> PlayEvent | None:
        """End the current play (the daemon is stopping)."""
        if self._playing is None:
            return None
        event = self._end(now, wall, PlayEnd.SHUTDOWN)
        self._playing = None
        return event

    # ----------------------------------------------------------------------------------------

    def _stretch_over(self, rule: Rule | None, now: float) -> bool:
        if rule is None or rule.play.max_s is None or self._stretch_rule != rule.id:
            return False
        return now - self._stretch_started >= rule.play.max_s

    def _better(self, decision: Decision, playing: _Playing) -> bool:
        if decision.kind is not DecisionKind.RULE:
            return False
        if playing.rule is None:
            return True  # a matching rule beats the default or neutral playlist
        winner = next(v for v in decision.verdicts if v.rule_id == decision.rule_id)
        return winner.priority > playing.rule.priority

    def _switch(
        self,
        people: Sequence[PersonNow],
        now: float,
        wall: float,
        why: PlayEnd,
        decision: Decision | None = None,
    ) -> Step:
        ended = self._end(now, wall, why)
        self._playing = None
        return self._start(people, now, wall, ended, decision)

    def _end(self, now: float, wall: float, why: PlayEnd) -> PlayEvent:
        playing = self._playing
        assert playing is not None
        start = playing.start
        return PlayEvent(
            play_id=start.play_id,
            creative_id=start.creative.creative_id,
            rule_id=start.rule_id,
            decision=playing.decision.kind.value,
            reason=start.reason,
            started_wall=start.started_wall,
            ended_wall=wall,
            duration_s=round(now - playing.started, 3),
            ended_by=why,
            audience=playing.audience(self.min_segment_size),
            rules_version=playing.rules_version,
        )

    def _start(
        self,
        people: Sequence[PersonNow],
        now: float,
        wall: float,
        ended: PlayEvent | None,
        decision: Decision | None = None,
    ) -> Step:
        table = self.table
        if decision is None:
            decision = decide(table, people, _wall_datetime(wall), self.context(now))
        rule = None
        if decision.kind is DecisionKind.RULE:
            rule = next(r for r in table.rules if r.id == decision.rule_id)
            creative = self._take_turn(rule.id, table.creatives_of(rule))
            self._note_rule_start(rule, decision, now)
            min_s, interruptible = rule.play.min_s, rule.play.interruptible
        else:
            playlist = table.default_playlist
            key = "default playlist"
            if decision.kind is DecisionKind.NEUTRAL:
                playlist, key = table.neutral_playlist, "neutral playlist"
            creative = self._take_turn(key, playlist)
            self._end_stretch(now)
            min_s, interruptible = table.default_min_play_s, True
        start = PlayStart(
            play_id=uuid.uuid4().hex,
            creative=creative,
            rule_id=decision.rule_id,
            started_wall=wall,
            reason=decision.reason,
        )
        self._playing = _Playing(start, decision, rule, table.version_id, now, min_s, interruptible)
        self._playing.watch(people)
        return Step(ended=ended, started=start, decision=decision)

    def _take_turn(self, key: str, creatives: Sequence[Creative]) -> Creative:
        index = self._next_creative[key] % len(creatives)
        self._next_creative[key] = index + 1
        return creatives[index]

    def _note_rule_start(self, rule: Rule, decision: Decision, now: float) -> None:
        if self._stretch_rule != rule.id:
            self._end_stretch(now)
            self._stretch_rule, self._stretch_started = rule.id, now
        contenders = [r for r in self.table.rules if r.id in decision.contenders]
        if len(contenders) > 1:
            self._rule_states = settle_turn(self._rule_states, contenders, rule.id)
        state = self._rule_states.get(rule.id, RuleState())
        recent = (*(t for t in state.recent_starts if now - t < HOUR_S), now)
        self._rule_states[rule.id] = dataclasses.replace(state, recent_starts=recent)

    def _end_stretch(self, now: float) -> None:
        """The rule that held the screen gives it up: its cooldown starts now."""
        if self._stretch_rule is None:
            return
        rule = next((r for r in self.table.rules if r.id == self._stretch_rule), None)
        if rule is not None and rule.play.cooldown_s > 0:
            state = self._rule_states.get(rule.id, RuleState())
            self._rule_states[rule.id] = dataclasses.replace(
                state, cooldown_until=now + rule.play.cooldown_s
            )
        self._stretch_rule = None


def _wall_datetime(wall: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(wall, dt.UTC)
