"""The ads stage as the daemon drives it: rules (reloaded when they change) -> scheduler -> player.

    stage = AdStage.from_settings(config.ads_settings(), on_play_start=..., on_play_event=...)
    stage.start(now, wall)                 # loads the rules, starts the player, shows a play
    stage.tick(snapshot.people, now, wall) # every frame, and a few times a second without one
    stage.stop(now, wall)                  # the last PlayEvent, then the player closes

Outputs go through callbacks (log lines today, MQTT with the telemetry stage) so that this
module knows nothing of where they end up; a rejected rules edit is reported by the watcher's
own `on_error` and stays readable as `watcher.last_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from edge_agent.ads.players import make_player
from edge_agent.ads.players.base import Player, ShownReport
from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.rules import RulesError
from edge_agent.ads.scheduler import AdScheduler
from edge_agent.ads.values import AdsSettings, Decision, PlayEvent, PlayStart
from edge_agent.audience.values import PersonNow

log = logging.getLogger(__name__)


def _ignore(*_: object) -> None:
    pass


class AdStage:
    def __init__(
        self,
        watcher: RulesWatcher,
        player: Player,
        *,
        min_segment_size: int = 5,
        reload_check_s: float = 1.0,
        on_play_start: Callable[[PlayStart, Decision], None] = _ignore,
        on_play_event: Callable[[PlayEvent], None] = _ignore,
    ) -> None:
        self.watcher = watcher
        self.player = player
        self.min_segment_size = min_segment_size
        self.reload_check_s = reload_check_s
        self.on_play_start = on_play_start
        self.on_play_event = on_play_event
        self.scheduler: AdScheduler | None = None
        self._next_reload_check = 0.0

    @classmethod
    def from_settings(
        cls,
        settings: AdsSettings,
        *,
        on_play_start: Callable[[PlayStart, Decision], None] = _ignore,
        on_play_event: Callable[[PlayEvent], None] = _ignore,
        on_rules_error: Callable[[RulesError], None] | None = None,
        on_shown: Callable[[ShownReport], None] | None = None,
    ) -> AdStage:
        """The stage as configured: its rules watcher and its player, built, not started.
        `on_rules_error` sees each rejected rules edit (default: logged); `on_shown` each
        page report that a play is on screen (web player only)."""
        watcher = RulesWatcher(
            settings.rules,
            brackets=settings.brackets,
            last_good=settings.last_good,
            on_error=on_rules_error,
        )
        options: dict[str, object] = {}
        if settings.player == "web":
            options = {"host": settings.web_host, "port": settings.web_port, "on_shown": on_shown}
        return cls(
            watcher,
            make_player(settings.player, **options),
            min_segment_size=settings.min_segment_size,
            reload_check_s=settings.reload_check_s,
            on_play_start=on_play_start,
            on_play_event=on_play_event,
        )

    def start(self, now: float, wall: float) -> None:
        """Load the rules (`RulesError` if neither the file nor a last good copy is usable)
        and start the player with the first play, before any frame arrives."""
        table = self.watcher.load_initial()
        self.scheduler = AdScheduler(table, min_segment_size=self.min_segment_size)
        self.player.start()
        self._next_reload_check = now + self.reload_check_s
        self.tick((), now, wall)

    def tick(self, people: Sequence[PersonNow], now: float, wall: float) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        if now >= self._next_reload_check:
            self._next_reload_check = now + self.reload_check_s
            # Off the frame thread: a big file or a slow disk must not starve the watchdog.
            table = self.watcher.poll_in_background()
            if table is not None:
                scheduler.replace_rules(table)
        step = scheduler.tick(people, now, wall)
        if step.ended is not None:
            self._emit(self.on_play_event, step.ended)
        if step.started is not None:
            self.player.show(step.started)
            if step.decision is not None:
                self._emit(self.on_play_start, step.started, step.decision)

    def stop(self, now: float, wall: float) -> None:
        if self.scheduler is not None:
            event = self.scheduler.stop(now, wall)
            if event is not None:
                self._emit(self.on_play_event, event)
        self.player.close()

    @staticmethod
    def _emit(callback: Callable[..., None], *values: object) -> None:
        # A failing output must not stop the screen from changing.
        try:
            callback(*values)
        except Exception:
            log.exception("an ads output failed")
