"""The play state machine, driven tick by tick through simulated time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ads.scheduler import AdScheduler
from edge_agent.ads.values import PlayEnd
from edge_agent.segments import DEFAULT_BRACKETS, Gender, segment_name
from tests.support.ads import BASE, person, table_with

# Monday 2026-11-23 18:00 UTC: the wall clock the simulations start at.
WALL0 = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC).timestamp()
WOMAN = person(1, "female", 30)
MAN = person(2, "male", 40)
CHILD = person(3, "male", 9)


class Run:
    """Ticks a scheduler every `step` seconds and keeps every start and end."""

    def __init__(self, scheduler: AdScheduler, step: float = 0.25) -> None:
        self.scheduler = scheduler
        self.step = step
        self.now = 0.0
        self.starts = []
        self.ends = []

    def until(self, seconds: float, people=()) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            step = self.scheduler.tick(list(people), self.now, WALL0 + self.now)
            if step.ended is not None:
                self.ends.append(step.ended)
            if step.started is not None:
                self.starts.append(step.started)
            self.now = round(self.now + self.step, 6)

    @property
    def showing(self) -> str:
        return self.scheduler.current.creative.creative_id


def scheduler_for(tmp_path, rules: str = "", head: str = BASE, **options) -> AdScheduler:
    return AdScheduler(table_with(tmp_path, rules, head), **options)


def test_nobody_there_rotates_the_default_playlist(tmp_path):
    run = Run(scheduler_for(tmp_path))
    run.until(35)
    assert [s.creative.creative_id for s in run.starts] == ["a", "b", "a", "b"]
    assert all(e.ended_by is PlayEnd.COMPLETED for e in run.ends)
    assert [e.duration_s for e in run.ends] == [10.0, 10.0, 10.0]
    assert all(s.rule_id is None for s in run.starts)


def test_an_arriving_audience_takes_over_a_default_item_after_its_minimum(tmp_path):
    run = Run(scheduler_for(tmp_path, "- {id: men, creatives: [t1], audience: {gender: male}}\n"))
    run.until(1)
    run.until(3, [MAN])  # default_min_play_s is 2
    assert run.showing == "t1"
    assert run.ends[0].ended_by is PlayEnd.PREEMPTED
    assert run.ends[0].duration_s == pytest.approx(2.0)
    assert run.starts[-1].rule_id == "men"
    assert "rule men" in run.starts[-1].reason


def test_a_play_runs_to_its_end_unless_its_rule_is_interruptible(tmp_path):
    rules = """
        - {id: low, priority: 1, creatives: [t1], audience: {people: {min: 0}}, play: {min_s: 4}}
        - {id: high, priority: 9, creatives: [t2], audience: {people: {min: 2}}}
        """
    run = Run(scheduler_for(tmp_path, rules))
    run.until(6)
    assert run.showing == "t1"
    run.until(3, [WOMAN, MAN])  # two people: `high` matches, but `low` is not interruptible
    assert run.showing == "t1"
    run.until(2, [WOMAN, MAN])
    assert run.showing == "t2"
    assert run.ends[-1].ended_by is PlayEnd.COMPLETED

    interruptible = rules.replace("min_s: 4}", "min_s: 4, interruptible: true}")
    run = Run(scheduler_for(tmp_path, interruptible))
    run.until(2, [WOMAN, MAN][:0])
    run.until(1.5, [WOMAN, MAN])
    assert run.showing == "t1"  # not before min_s
    run.until(1, [WOMAN, MAN])
    assert run.showing == "t2"
    assert run.ends[-1].ended_by is PlayEnd.PREEMPTED
    assert run.ends[-1].duration_s == pytest.approx(4.0)


def test_a_possible_minor_cuts_a_targeted_play_at_once(tmp_path):
    rules = "- {id: men, creatives: [t1], audience: {gender: male}, play: {min_s: 8}}\n"
    run = Run(scheduler_for(tmp_path, rules))
    run.until(3, [MAN])
    assert run.showing == "t1"
    run.until(1, [MAN, CHILD])
    assert run.showing == "n"  # the neutral playlist
    assert run.ends[-1].ended_by is PlayEnd.MINOR_PRESENT
    assert run.starts[-1].rule_id is None


def test_max_play_time_ends_the_stretch_and_the_cooldown_follows(tmp_path):
    rules = """
        - id: r
          creatives: [t1, t2]
          audience: {people: {min: 0}}
          play: {max_s: 25, cooldown_s: 30}
        """
    run = Run(scheduler_for(tmp_path, rules))
    run.until(25.25)
    # t1 and t2 back to back, then t1 again, cut when the rule has held the screen 25 s.
    assert [s.creative.creative_id for s in run.starts] == ["t1", "t2", "t1", "a"]
    assert run.ends[2].ended_by is PlayEnd.STRETCH_LIMIT
    assert run.ends[2].duration_s == pytest.approx(5.0)
    run.until(29)  # cooling down until 55 s: the default playlist
    assert all(s.rule_id is None for s in run.starts[3:])
    run.until(11)
    assert run.starts[-1].rule_id == "r"


def test_the_frequency_cap_counts_plays_in_the_last_hour(tmp_path):
    rules = """
        - id: capped
          priority: 5
          creatives: [t1]
          audience: {people: {min: 0}}
          play: {max_per_hour: 3, cooldown_s: 0}
        - {id: filler, creatives: [t2], audience: {people: {min: 0}}}
        """
    run = Run(scheduler_for(tmp_path, rules), step=1.0)
    run.until(3600)
    capped = [s for s in run.starts if s.rule_id == "capped"]
    assert len(capped) == 3
    run.until(600)
    assert len([s for s in run.starts if s.rule_id == "capped"]) > 3  # the hour rolled on


def test_equal_priorities_share_the_screen_by_weight(tmp_path):
    rules = """
        - {id: heavy, weight: 3, creatives: [t1], audience: {people: {min: 0}}}
        - {id: light, weight: 1, creatives: [t2], audience: {people: {min: 0}}}
        """
    run = Run(scheduler_for(tmp_path, rules), step=1.0)
    run.until(400)
    plays = [s.rule_id for s in run.starts]
    assert plays.count("heavy") == 30 and plays.count("light") == 10


def test_play_events_count_the_audience_during_the_play(tmp_path):
    run = Run(scheduler_for(tmp_path, min_segment_size=2))
    women = [person(i, "female", 40, attention_s=0.0) for i in (11, 12)]
    run.until(2, women)
    looked = [person(i, "female", 40, attention_s=1.5) for i in (11, 12)]
    run.until(2, [*looked, person(13, "male", 60, looking=False, attention_s=0.0)])
    run.until(6.5)
    event = run.ends[0]
    assert event.audience.people == 3
    assert event.audience.viewers == 3 - 1  # the man never looked
    assert event.audience.peak_people == 3
    assert event.audience.attention_s == pytest.approx(3.0)
    women_40 = segment_name(Gender.FEMALE, DEFAULT_BRACKETS.of(40))
    assert event.audience.segments == {women_40: 2, "other": 1}  # k=2 folds the man


def test_new_rules_apply_from_the_next_decision(tmp_path):
    scheduler = scheduler_for(tmp_path)
    run = Run(scheduler)
    run.until(5, [MAN])
    assert run.showing == "a"
    old_version = scheduler.table.version_id
    scheduler.replace_rules(
        table_with(tmp_path, "- {id: men, creatives: [t3], audience: {gender: male}}\n")
    )
    assert run.showing == "a"  # the current play is not disturbed
    run.until(1, [MAN])
    assert run.showing == "t3"
    assert run.ends[-1].rules_version == old_version  # "a" was decided by the old rules
    assert scheduler.table.version_id != old_version


def test_stop_ends_the_current_play(tmp_path):
    scheduler = scheduler_for(tmp_path)
    scheduler.tick([], 0.0, WALL0)
    event = scheduler.stop(4.0, WALL0 + 4)
    assert event is not None and event.ended_by is PlayEnd.SHUTDOWN
    assert event.duration_s == 4.0
    assert scheduler.stop(5.0, WALL0 + 5) is None


RULES_FOR_PROPERTY = """
- id: women
  priority: 5
  creatives: [t1]
  audience: {gender: female}
  play: {min_s: 1, interruptible: true}
- id: men
  priority: 4
  creatives: [t2, t3]
  audience: {gender: male, age: {min: 30}}
  play: {max_s: 15, cooldown_s: 10}
- {id: crowd, priority: 6, creatives: [t3], audience: {people: {min: 3}}, play: {max_per_hour: 5}}
"""
POOL = [WOMAN, MAN, CHILD, person(4, "female", 62), person(5, None, None), person(6, "male", 33)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scenes=st.lists(
        st.tuples(st.floats(0.25, 40.0), st.lists(st.sampled_from(POOL), max_size=5, unique=True)),
        min_size=1,
        max_size=25,
    )
)
def test_every_play_has_exactly_one_complete_play_event(tmp_path, scenes):
    scheduler = scheduler_for(tmp_path, RULES_FOR_PROPERTY)
    run = Run(scheduler)
    for seconds, people in scenes:
        run.until(seconds, people)
    final = scheduler.stop(run.now, WALL0 + run.now)
    ends = [*run.ends, final]
    assert [e.play_id for e in ends] == [s.play_id for s in run.starts]
    assert len({s.play_id for s in run.starts}) == len(run.starts)
    for start, end in zip(run.starts, ends, strict=True):
        assert end.creative_id == start.creative.creative_id
        assert end.rule_id == start.rule_id
        assert end.started_wall == start.started_wall
        assert end.ended_wall >= end.started_wall
        assert end.duration_s <= start.creative.duration_s + 1e-6
        assert end.reason and end.rules_version and end.decision in {"rule", "default", "neutral"}
        assert end.audience.people >= end.audience.peak_people
    # Back to back: the screen is never left without a play.
    for previous, following in zip(ends, run.starts[1:], strict=False):
        assert following.started_wall == previous.ended_wall
