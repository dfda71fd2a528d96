"""The `state` section: the folder for what must survive a restart."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config.base import ConfigModel, setting

# In `state.dir`: a copy of the last rules file that loaded, for a start with a broken one.
LAST_GOOD_RULES_FILE = "rules.last-good.yaml"


class StateConfig(ConfigModel):
    dir: Path = setting(
        Path("state"),
        "State folder",
        "Folder for what must survive a restart (the last good copy of the rules). Under"
        " systemd: /var/lib/edge-agent.",
    )
