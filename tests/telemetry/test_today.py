"""Today's totals: summed per local day, kept across restarts, started again at midnight."""

from __future__ import annotations

import datetime as dt

from edge_agent.telemetry.today import TodayCounter
from tests.support.telemetry import mix, report

UTC_DATE = lambda wall: dt.datetime.fromtimestamp(wall, dt.UTC).date()  # noqa: E731
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC).timestamp()


def test_reports_add_up_and_survive_a_restart(tmp_path):
    path = tmp_path / "today.json"
    counter = TodayCounter(path, UTC_DATE)
    counter.add(report(NOON, 3, {"other": 3}))
    # The second window closes the hour: its report carries the hour's mix, folded over the
    # whole hour, and the day's segments are the sums of those mixes.
    hour = mix(NOON + 60, {"female/20-34": 4, "other": 1})
    counter.add(report(NOON + 60, 2, {"other": 2}, mix=hour))
    restarted = TodayCounter(path, UTC_DATE)
    totals = restarted.totals(NOON + 90)
    assert (totals.date, totals.passers_by, totals.viewers) == (dt.date(2026, 11, 23), 5, 2)
    assert totals.segments == {"female/20-34": 4, "other": 1}
    assert totals.viewer_segments == {"other": 1}


def test_segments_move_only_when_a_mix_span_closes(tmp_path):
    counter = TodayCounter(tmp_path / "today.json", UTC_DATE)
    totals = counter.add(report(NOON, 3, {"other": 3}))
    assert totals.passers_by == 3 and totals.segments == {}
    totals = counter.add(
        report(NOON + 60, 6, {"male/35-54": 6}, mix=mix(NOON + 60, {"male/35-54": 6, "other": 3}))
    )
    assert totals.passers_by == 9 and totals.segments == {"male/35-54": 6, "other": 3}


def test_a_new_day_starts_from_zero(tmp_path):
    counter = TodayCounter(tmp_path / "today.json", UTC_DATE)
    counter.add(report(NOON, 3))
    tomorrow = NOON + 24 * 3600
    assert counter.totals(tomorrow).passers_by == 0
    # A window that ends after midnight counts for the new day only.
    totals = counter.add(report(tomorrow, 2))
    assert (totals.date, totals.passers_by) == (dt.date(2026, 11, 24), 2)
    # And a restart on the next day does not bring yesterday back.
    later = TodayCounter(tmp_path / "today.json", UTC_DATE).totals(tomorrow + 24 * 3600)
    assert later.passers_by == 0


def test_a_damaged_file_is_reported_and_counting_starts_again(tmp_path, caplog):
    path = tmp_path / "today.json"
    path.write_text('{"date": "2026-11-23", "passers_by": "lots"')
    counter = TodayCounter(path, UTC_DATE)
    assert "counting from 0" in caplog.text
    assert counter.add(report(NOON, 2)).passers_by == 2
    assert TodayCounter(path, UTC_DATE).totals(NOON).passers_by == 2
