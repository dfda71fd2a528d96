"""Players: what turns a `PlayStart` into pixels on the screen.

    player = make_player("web", port=8765, on_shown=report)   # or "none"
    player.start()
    player.show(play)          # from the daemon's thread; returns at once
    player.close()

- "web": `WebPlayer`, a local web server and the kiosk page that a full-screen Chromium shows
  (`chromium --kiosk http://127.0.0.1:8765/`). The page tells the player when a creative is
  actually on screen (`ShownReport`).
- "none": `NullPlayer`, for screens driven by an external player (Anthias, Xibo, ...) that gets
  the decisions from MQTT; it only remembers the current play.

Only the chosen player is imported: "none" must not pull in aiohttp.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from edge_agent.ads.values import PlayStart

if TYPE_CHECKING:
    from edge_agent.ads.players.web import WebPlayer

__all__ = [
    "NullPlayer",
    "Player",
    "PlayerError",
    "ShownReport",
    "WebPlayer",
    "make_player",
]

log = logging.getLogger(__name__)

PlayerKind = Literal["web", "none"]


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


def make_player(kind: PlayerKind, **options: Any) -> Player:
    """Build (not start) the player `kind` names; options go to its constructor."""
    if kind == "none":
        return NullPlayer(**options)
    if kind == "web":
        from edge_agent.ads.players.web import WebPlayer

        return WebPlayer(**options)
    raise ValueError(f"unknown player {kind!r}: expected 'web' or 'none'")


def __getattr__(name: str) -> Any:
    # `from edge_agent.ads.players import WebPlayer` works without importing aiohttp up front.
    if name == "WebPlayer":
        from edge_agent.ads.players.web import WebPlayer

        return WebPlayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
