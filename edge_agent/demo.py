"""Live terminal view for `edge-agent demo`: one status line, and each closed window."""

from __future__ import annotations

import time
from typing import TextIO

from edge_agent.ads.decide import Decision
from edge_agent.ads.values import PlayStart
from edge_agent.audience.metrics import AudienceReport
from edge_agent.pipeline import FrameResult


class LiveStats:
    """Redraws one line at most every `every_s` seconds; on a pipe, prints plain lines."""

    def __init__(self, stream: TextIO, every_s: float = 0.5) -> None:
        self.stream = stream
        self.every_s = every_s
        self.tty = stream.isatty()
        self._last = 0.0
        self._frames = 0
        self._started = time.monotonic()
        self._stage_ms = 0.0
        self._playing = "-"

    def frame(self, result: FrameResult) -> None:
        self._frames += 1
        self._stage_ms += result.times.total_ms
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        snapshot = result.snapshot
        segments = ", ".join(f"{k} {v}" for k, v in sorted(snapshot.segments.items())) or "-"
        line = (
            f"frame {result.frame_index:5d}  {self._frames / (now - self._started):5.1f} fps"
            f"  pipeline {self._stage_ms / self._frames:5.2f} ms/frame"
            f"  present {snapshot.present}  looking {snapshot.viewers_now}  [{segments}]"
            f"  playing {self._playing}"
        )
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def report(self, report: AudienceReport) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        segments = ", ".join(f"{k} {v}" for k, v in report.segments.items()) or "-"
        self.stream.write(
            f"window: {report.passers_by} passers-by, {report.viewers} viewers,"
            f" dwell median {report.dwell.median_s} s, attention median"
            f" {report.attention.median_s} s  [{segments}]\n"
        )
        self.stream.flush()

    def play(self, play: PlayStart, decision: Decision) -> None:
        """A new ad is on: print why (the marketer's question), keep its name on the line."""
        self._playing = play.creative.creative_id
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"ad: {play.creative.creative_id}  <- {play.reason}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
