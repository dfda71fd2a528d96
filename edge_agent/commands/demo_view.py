"""Live terminal view for `edge-agent demo`: one status line, and each closed window."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, TextIO

import paho.mqtt.client as mqtt

from edge_agent.ads.values import Decision, PlayStart
from edge_agent.audience.values import AudienceReport
from edge_agent.pipeline import FrameResult
from edge_agent.telemetry.client import new_paho_client
from edge_agent.telemetry.topics import parse_topic


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


class MessageCounter:
    """Subscribes to what the demo publishes and counts it per topic, so the demo can show
    that its messages really went through a broker."""

    def __init__(self, host: str, port: int, subscription: str) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client = new_paho_client("edge-agent-demo-view")
        self._client.on_connect = lambda client, *_: client.subscribe(subscription, qos=1)
        self._client.on_message = self._on_message
        self._client.connect_async(host, port)
        self._client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(message.topic)
        with self._lock:
            self.counts[parsed[2].value if parsed else message.topic] += 1

    def summary(self) -> str:
        time.sleep(0.3)  # the last acknowledged messages are still on their way to us
        with self._lock:
            total = sum(self.counts.values())
            parts = ", ".join(f"{topic} {n}" for topic, n in sorted(self.counts.items()))
        return f"MQTT: {total} messages received back from the broker: {parts or 'none'}"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
