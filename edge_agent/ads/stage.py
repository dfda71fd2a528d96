"""The ads stage as the daemon drives it: rules (reloaded when they change) -> scheduler -> player.

    stage = AdStage(watcher, player, on_play_start=..., on_play_event=...)
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

from edge_agent.ads.decide import Decision
from edge_agent.ads.players import Player
from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.scheduler import AdScheduler
from edge_agent.ads.values import PlayEvent, PlayStart
from edge_agent.audience.metrics import PersonNow

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
            table = self.watcher.poll()
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
