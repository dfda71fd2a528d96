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

from typing import TYPE_CHECKING, Any

from edge_agent.ads.players.base import NullPlayer, Player, PlayerError, ShownReport
from edge_agent.ads.values import PlayerKind

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
