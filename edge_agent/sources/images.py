"""A folder or glob of still images as a source: for evaluation sets and for demos.

Files are taken in natural order ("img2" before "img10"). A file that cannot be decoded is
skipped with a warning, once per file however often a looping folder comes back to it: one
bad file in a folder of thousands should not stop an evaluation, nor fill the journal.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from pathlib import Path

import cv2

from edge_agent.sources.base import EndOfStream, FrameSource, Pacer, SourceError, to_rgb
from edge_agent.sources.spec import IMAGE_SUFFIXES, is_glob
from edge_agent.sources.values import Frame

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str) -> tuple[object, ...]:
    """Sort key that orders embedded numbers by value: frame2.jpg before frame10.jpg."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(path))


class ImageFolderSource(FrameSource):
    """Every image in a directory (non-recursive), or every file matching a glob pattern.

    The list is taken again at each open and each loop, so files added meanwhile are seen.
    `fps` paces delivery like a camera; without it images come as fast as they decode.
    """

    def __init__(
        self,
        pattern_or_dir: str | os.PathLike[str],
        *,
        loop: bool = False,
        fps: float | None = None,
    ) -> None:
        self.pattern = os.fspath(pattern_or_dir)
        self.loop = loop
        self.fps = fps
        self._pacer = Pacer(fps) if fps is not None else None
        self._files: list[str] = []
        self._position = 0
        self._pass_frames = 0
        self._index = 0
        self._open = False
        self._warned: set[str] = set()  # files already reported as not readable images

    def describe(self) -> str:
        return f"images {self.pattern}"

    def list_files(self) -> list[str]:
        path = Path(self.pattern)
        if path.is_dir():
            names = [str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        elif is_glob(self.pattern):
            names = glob.glob(self.pattern)
        else:
            names = [self.pattern]  # one still image
        return sorted((name for name in names if os.path.isfile(name)), key=natural_key)

    def open(self) -> None:
        self._files = self.list_files()
        if not self._files:
            raise SourceError(f"no image files in {self.pattern}")
        self._position = 0
        self._pass_frames = 0
        self._open = True
        log.info("opened %s (%d files)", self.describe(), len(self._files))

    def read(self, timeout: float) -> Frame | None:
        if not self._open:
            raise SourceError(f"{self.describe()} is not open")
        while True:
            if self._position >= len(self._files):
                self._next_pass()
            name = self._files[self._position]
            self._position += 1
            image = cv2.imread(name, cv2.IMREAD_COLOR)
            if image is None:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("skipping %s: not a readable image", name)
                continue
            self._pass_frames += 1
            if self._pacer is not None:
                self._pacer.wait()
            return self._stamp(to_rgb(image))

    def _next_pass(self) -> None:
        if not self.loop:
            raise EndOfStream(f"end of {self.describe()} after {self._index} frames")
        if self._pass_frames == 0:
            # Looping over files that all fail to decode would spin forever.
            raise SourceError(f"none of the files in {self.pattern} is a readable image")
        self._files = self.list_files()
        if not self._files:
            raise SourceError(f"no image files in {self.pattern} any more")
        self._position = 0
        self._pass_frames = 0

    def close(self) -> None:
        self._open = False
        self._files = []
