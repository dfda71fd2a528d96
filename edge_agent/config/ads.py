"""The `ads` section: which ad plays, the rules file, the player, reloads."""

from __future__ import annotations

from pathlib import Path

from edge_agent.ads.values import PlayerKind
from edge_agent.config.base import ConfigModel, section, setting


class WebPlayerConfig(ConfigModel):
    host: str = setting(
        "127.0.0.1",
        "Address",
        "Address the kiosk page is served on. 127.0.0.1 keeps it on this device, where the"
        " kiosk browser runs; it has no authentication, so do not open it to the network.",
        min_length=1,
    )
    port: int = setting(
        8765,
        "Port",
        "TCP port of the kiosk page; 0 picks a free one (tests; the log says which).",
        ge=0,
        le=65535,
    )


class AdsConfig(ConfigModel):
    enabled: bool = setting(True, "Enabled", "Choose and show ads; false only counts the audience.")
    rules: Path = setting(
        Path("ads/rules.yaml"),
        "Rules file",
        "The ad rule table (see `edge-agent rules check` and `rules explain`). Re-read when it"
        " changes; a bad edit is reported and the last good rules keep running.",
    )
    player: PlayerKind = setting(
        "web",
        "Player",
        "web: the kiosk page at http://HOST:PORT/ for a full-screen browser on this device;"
        " none: no display, decisions only go out (log, MQTT) for an external player.",
    )
    web: WebPlayerConfig = section(WebPlayerConfig, "Web player", "The kiosk page server.")
    reload_check_s: float = setting(
        1.0, "Rules check interval", "Seconds between checks whether the rules file changed.", gt=0
    )
