"""The `debug` section: debugging aids, all off by default; never in a store."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config.base import ConfigModel, setting


class DebugConfig(ConfigModel):
    save_annotated_frames_dir: Path | None = setting(
        None,
        "Annotated frames folder",
        "WARNING: PRIVACY. When set, frames with boxes and estimates drawn on them are written"
        " to this folder: these are images of people's faces stored on disk. For debugging on a"
        " bench only, never in a store. null (the default): nothing is written.",
    )
