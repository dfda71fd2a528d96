"""Helpers for the ads tests: small media on disk, rules text, people in front of the screen."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np

from edge_agent.ads.explain import make_person
from edge_agent.ads.rules import RuleTable, load_rules
from edge_agent.audience.values import PersonNow
from edge_agent.segments import DEFAULT_BRACKETS


def write_image(path: Path, colour: tuple[int, int, int] = (0, 128, 255)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((36, 64, 3), colour, np.uint8))
    return path


def write_video(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (64, 36))
    for index in range(round(seconds * fps)):
        writer.write(np.full((36, 64, 3), index * 20 % 255, np.uint8))
    writer.release()
    return path


# Creatives a, b (default playlist), n (neutral), t1, t2, t3 (targeted), all 10 s images.
BASE = """\
version: 1
timezone: UTC
default_min_play_s: 2
minors: {playlist: [n]}
default_playlist: [a, b]
creatives:
  - {id: a, file: media/a.png, duration_s: 10}
  - {id: b, file: media/b.png, duration_s: 10}
  - {id: n, file: media/n.png, duration_s: 10}
  - {id: t1, file: media/t1.png, duration_s: 10}
  - {id: t2, file: media/t2.png, duration_s: 10}
  - {id: t3, file: media/t3.png, duration_s: 10}
"""


def write_rules(folder: Path, rules: str = "", head: str = BASE) -> Path:
    """A rules file with BASE's creatives (made on disk) plus `rules` (a YAML `rules:` list)."""
    for name in ("a", "b", "n", "t1", "t2", "t3"):
        if not (folder / "media" / f"{name}.png").exists():
            write_image(folder / "media" / f"{name}.png")
    path = folder / "rules.yaml"
    body = head + ("rules:\n" + textwrap.indent(textwrap.dedent(rules), "  ") if rules else "")
    path.write_text(body)
    return path


def table_with(folder: Path, rules: str = "", head: str = BASE) -> RuleTable:
    return load_rules(write_rules(folder, rules, head))


def person(
    track_id: int,
    gender: str | None,
    age: float | None,
    *,
    looking: bool = True,
    attention_s: float = 2.0,
) -> PersonNow:
    """Someone in front of the screen with a final estimate (the default age brackets)."""
    return make_person(
        track_id, gender, age, DEFAULT_BRACKETS, looking=looking, attention_s=attention_s
    )
