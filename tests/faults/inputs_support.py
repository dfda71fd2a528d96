"""Real files and a real `edge-agent` process for the input fault tests."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.support.paths import REPO


def write_video(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    """An MJPG AVI of `frames` grey frames; 0 gives a valid header and no frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 + index % 100, dtype=np.uint8))
    writer.release()
    return path


def damage(source: Path, destination: Path, *, seed: int = 1, bytes_changed: int = 2000) -> Path:
    """A copy with random bytes overwritten past its first tenth (the header stays intact)."""
    data = bytearray(source.read_bytes())
    rng = random.Random(seed)
    for _ in range(bytes_changed):
        data[rng.randrange(len(data) // 10, len(data))] = rng.randrange(256)
    destination.write_bytes(bytes(data))
    return destination


def edge_agent(
    *args: str, timeout: float, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """`edge-agent ARGS` as a child running this checkout; `timeout` guards against a hang."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        cwd=cwd,
    )


def write_config(directory: Path, video: Path, **sections: dict[str, object]) -> Path:
    """A config on `video` with its state in `directory`, telemetry off, no player; `sections`
    add or replace keys (one level: {"state": {"dir": ...}})."""
    import yaml

    data: dict[str, dict[str, object]] = {
        "source": {"spec": str(video), "loop": False, "realtime": False},
        "state": {"dir": str(directory / "state")},
        "ads": {"player": "none", "rules": str(REPO / "ads" / "rules.yaml")},
        "mqtt": {"enabled": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
