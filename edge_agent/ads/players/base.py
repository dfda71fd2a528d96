"""What every player shares: the `Player` protocol, its errors and reports, and the `none`
player."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from edge_agent.ads.values import PlayStart

log = logging.getLogger(__name__)


class PlayerError(RuntimeError):
    """A player cannot start (port in use, bad address); the message says what to change."""


@dataclass(frozen=True, slots=True)
class ShownReport:
    """A page's word that a play's creative is fully on screen."""

    play_id: str
    creative_id: str
    shown_wall: float  # time.time() on the server when the page's report arrived
    latency_s: float  # shown_wall - PlayStart.started_wall: decision to visible, as served
    page_latency_ms: float | None = None  # the page's own clock: event received to fade done
    page_ready_ms: float | None = None  # the page's own clock: event received to media decoded


class Player(Protocol):
    def start(self) -> None:
        """Get ready to show; returns once the player can take `show()` calls."""

    def show(self, play: PlayStart) -> None:
        """Show `play` from now on. Thread-safe and non-blocking."""

    def close(self) -> None:
        """Stop and release everything; safe to call twice."""


class NullPlayer:
    """The `none` player: shows nothing and only remembers what should be on screen."""

    def __init__(self) -> None:
        self.current: PlayStart | None = None

    def start(self) -> None:
        pass

    def show(self, play: PlayStart) -> None:
        # One attribute assignment is atomic, so callers on other threads see old or new.
        self.current = play
        log.debug(
            "play %s: %s (rule %s): %s",
            play.play_id,
            play.creative.creative_id,
            play.rule_id,
            play.reason,
        )

    def close(self) -> None:
        pass
