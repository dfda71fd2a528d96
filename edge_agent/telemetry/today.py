"""Today's totals: the sum of the day's window reports, kept across restarts.

Home Assistant's "passers-by today" is a `total_increasing` sensor: if a restart set it back
to 0 at noon, the day's statistics would count the morning twice. So the running sums live in
a small JSON file in the state folder, rewritten atomically after each report, and start from
zero only when the local date changes.

Passers-by and viewers are the sums of the day's window reports. The segment counts are the
sums of the day's mix spans (`audience.mix_window_s`, an hour by default), each folded over
its whole span: a one-minute window is nearly all "other", an hour much less so. Every number
added up has been published already, so no smaller group appears; the segments move once per
span, and until a span closes they cover fewer people than the passers-by.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.audience.values import AudienceReport

log = logging.getLogger(__name__)


def local_date(wall: float) -> dt.date:
    return dt.datetime.fromtimestamp(wall).date()


@dataclass(frozen=True, slots=True)
class DayTotals:
    date: dt.date
    passers_by: int = 0
    viewers: int = 0
    segments: dict[str, int] = field(default_factory=dict)
    viewer_segments: dict[str, int] = field(default_factory=dict)


class TodayCounter:
    def __init__(self, path: Path | None, date_of: Callable[[float], dt.date] = local_date) -> None:
        """`path` None keeps the totals in memory only (tests, the demo)."""
        self.path = path
        self.date_of = date_of
        self._save_failing = False  # one warning per stretch of refused writes, not per report
        self._totals: DayTotals | None = self._load()

    def totals(self, wall: float) -> DayTotals:
        """Today's totals as of `wall` (zero after midnight)."""
        today = self.date_of(wall)
        if self._totals is None or self._totals.date != today:
            self._totals = DayTotals(today)
        return self._totals

    def add(self, report: AudienceReport) -> DayTotals:
        """Count one closed window in the day it ended in."""
        current = self.totals(report.window_end_wall)
        segments = Counter(current.segments)
        viewer_segments = Counter(current.viewer_segments)
        if report.mix is not None:
            segments.update(report.mix.segments)
            viewer_segments.update(report.mix.viewer_segments)
        self._totals = DayTotals(
            current.date,
            current.passers_by + report.passers_by,
            current.viewers + report.viewers,
            dict(sorted(segments.items())),
            dict(sorted(viewer_segments.items())),
        )
        self._save(self._totals)
        return self._totals

    def _load(self) -> DayTotals | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
            return DayTotals(
                dt.date.fromisoformat(data["date"]),
                int(data["passers_by"]),
                int(data["viewers"]),
                {str(k): int(v) for k, v in data["segments"].items()},
                {str(k): int(v) for k, v in data["viewer_segments"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring today's totals in %s (%s): counting from 0", self.path, error)
            return None

    def _save(self, totals: DayTotals) -> None:
        if self.path is None:
            return
        data = {
            "date": totals.date.isoformat(),
            "passers_by": totals.passers_by,
            "viewers": totals.viewers,
            "segments": totals.segments,
            "viewer_segments": totals.viewer_segments,
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data))
            os.replace(temporary, self.path)
        except OSError as error:
            # A full or read-only disk: the totals go on in memory (and are published); a
            # half-written temporary file must not hold on to the little space left.
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            if not self._save_failing:
                self._save_failing = True
                log.warning(
                    "cannot keep today's totals in %s (%s): counting on in memory, and trying"
                    " again after each report",
                    self.path,
                    error.strerror or error,
                )
            return
        if self._save_failing:
            self._save_failing = False
            log.info("today's totals are kept in %s again", self.path)
