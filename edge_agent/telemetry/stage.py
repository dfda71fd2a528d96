"""The telemetry stage: the daemon's values in, MQTT messages out, never blocking.

Records (window reports, plays, decisions, errors, stats) go into the durable outbox and out
in order; states (availability, privacy, Home Assistant discovery, current audience, today,
now playing) are kept as their latest value and sent on every connect, before `online`.
Every call costs the vision loop one small SQLite transaction at most.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from edge_agent.ads.values import Decision, PlayEvent, PlayStart
from edge_agent.audience.values import AudienceReport
from edge_agent.segments import segment_names
from edge_agent.telemetry import homeassistant, payloads
from edge_agent.telemetry.client import LinkStatus, Message, MqttLink
from edge_agent.telemetry.outbox import MIN_FILE_BYTES, DiskNotice, Importance, Outbox
from edge_agent.telemetry.payloads import Payload, encode
from edge_agent.telemetry.today import DayTotals, TodayCounter
from edge_agent.telemetry.topics import SPECS, Leaf, Topics
from edge_agent.telemetry.values import DaemonStats, TelemetrySettings
from edge_agent.validated_yaml import ProblemsError

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite"
TODAY_FILE = "audience-today.json"
# audience/current is also re-sent this often when nothing changes, as a heartbeat.
_CURRENT_REFRESH_S = 60.0
# While the state disk refuses writes, a new count of what was dropped at most this often.
_DISK_UPDATE_S = 300.0


def topics_for(settings: TelemetrySettings) -> Topics:
    return Topics(settings.site, settings.device, settings.base_topic)


class TelemetryStage:
    def __init__(self, settings: TelemetrySettings, *, started_wall: float | None = None) -> None:
        """The outbox file is opened (or created) in `settings.state_dir` here, so a state
        folder that cannot be written stops start-up with its name."""
        self.settings = settings
        self.topics = topics_for(settings)
        self.started_wall = time.time() if started_wall is None else started_wall
        self.started_monotonic = time.monotonic()
        folder = settings.state_dir
        folder.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            folder / OUTBOX_FILE,
            max_messages=settings.outbox_max_messages,
            max_bytes=settings.outbox_max_bytes,
            # The same bound on the files, WAL included (and never above the free space).
            max_file_bytes=max(MIN_FILE_BYTES, settings.outbox_max_bytes),
        )
        self.today = TodayCounter(folder / TODAY_FILE)
        self.segments = segment_names(settings.brackets)
        subscriptions = {}
        if settings.discovery:
            subscriptions[homeassistant.status_topic(settings.discovery_prefix)] = (
                self._home_assistant_status
            )
        self.link = MqttLink(
            settings.link,
            self.outbox,
            availability_topic=self.topics.topic(Leaf.AVAILABILITY),
            make_availability=self._availability,
            subscriptions=subscriptions,
        )
        self._current: tuple[int, int] | None = None
        self._current_sent_at = float("-inf")
        self._publishing_disk_news = False
        self._disk_drops_told: dict[Importance, int] = {}
        self._disk_told_at = float("-inf")

    # ----------------------------------------------------------------------------------------

    def start(self) -> None:
        wall = time.time()
        site, device = self.topics.site, self.topics.device
        settings = self.settings
        if settings.discovery:
            discovery = homeassistant.discovery_messages(
                self.topics,
                segments=self.segments,
                device_name=settings.device_name,
                prefix=settings.discovery_prefix,
            )
            for topic, payload in discovery.items():
                self.link.set_state(Message(topic, encode(payload)))
        self._state(
            Leaf.PRIVACY,
            payloads.privacy(
                site,
                device,
                wall,
                min_segment_size=settings.min_segment_size,
                window_s=settings.window_s,
                controller=settings.controller,
                contact=settings.contact,
            ),
        )
        self._publish_today(wall)
        self.current(0, 0, time.monotonic(), wall)
        self.link.start()
        pending = self.outbox.count()
        if pending:
            log.info("MQTT: %d messages from before the restart wait to be sent", pending)

    def stop(self, flush_timeout_s: float = 2.0) -> None:
        self.link.close(flush_timeout_s)
        self.outbox.close()

    def report(self, report: AudienceReport) -> None:
        self._record(Leaf.AUDIENCE_REPORT, payloads.audience_report(*self._ids, report))
        totals = self.today.add(report)
        self._publish_today(report.window_end_wall, totals)

    def play_start(self, play: PlayStart, decision: Decision) -> None:
        self._state(Leaf.ADS_PLAYING, payloads.ads_playing(*self._ids, time.time(), play))
        self._record(Leaf.ADS_DECISION, payloads.ads_decision(*self._ids, play, decision))

    def play_event(self, event: PlayEvent) -> None:
        self._record(Leaf.ADS_PLAY, payloads.ads_play(*self._ids, event))

    def current(self, present: int, viewers_now: int, now: float, wall: float) -> None:
        """Called every frame; sends when the numbers change (at most once per
        `mqtt.current_min_interval_s`) and every minute regardless."""
        self._tell_disk_news()  # every frame: a disk that takes writes again is seen soon
        value = (present, viewers_now)
        since = now - self._current_sent_at
        if value == self._current and since < _CURRENT_REFRESH_S:
            return
        if value != self._current and since < self.settings.current_min_interval_s:
            return
        self._current, self._current_sent_at = value, now
        payload = payloads.audience_current(
            *self._ids, wall, present=present, viewers_now=viewers_now
        )
        self._state(Leaf.AUDIENCE_CURRENT, payload)

    def stats(self, stats: DaemonStats, wall: float) -> None:
        """The daemon's statistics as they are; the outbox's and the uptime are added here."""
        outbox = self.outbox.stats(wall)
        refusal = self.outbox.disk_refusal()
        if (
            refusal is not None
            and refusal.dropped != self._disk_drops_told
            and time.monotonic() - self._disk_told_at >= _DISK_UPDATE_S
        ):
            # Still refused, and more dropped since the last word: say so now, not only when
            # (if ever) the disk is back; at most every few minutes, as each word is a message.
            self._tell_disk(refusal)
        payload = payloads.stats(
            *self._ids,
            wall,
            {
                **dataclasses.asdict(stats),
                "uptime_s": round(time.monotonic() - self.started_monotonic, 1),
                "outbox_pending": outbox.pending,
                "outbox_dropped": sum(outbox.dropped_total.values()),
                "outbox_oldest_age_s": None
                if outbox.oldest_age_s is None
                else round(outbox.oldest_age_s, 1),
                "outbox_in_memory": outbox.in_memory,
                "outbox_disk_refused": outbox.disk_refused,
            },
        )
        self._record(Leaf.STATS, payload)

    def rules_error(self, error: ProblemsError) -> None:
        """A rejected rules file: its first problem, located, and how many there are."""
        first = error.problems[0] if error.problems else None
        self.error(
            "rules_invalid",
            f"rules rejected, the last good rules keep running: {first or error}",
            file=first.file if first else None,
            line=first.line if first else None,
            key=(first.key_path or None) if first else None,
            problems=max(1, len(error.problems)),
        )

    def error(
        self,
        kind: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        problems: int = 1,
        counts: dict[str, int | float] | None = None,
    ) -> None:
        payload = payloads.error(
            *self._ids,
            time.time(),
            kind=kind,
            message=message,
            file=file,
            line=line,
            key=key,
            problems=problems,
            counts=counts,
        )
        self._record(Leaf.EVENTS_ERROR, payload)

    def link_status(self) -> LinkStatus:
        return self.link.status()

    # ----------------------------------------------------------------------------------------

    @property
    def _ids(self) -> tuple[str, str]:
        return self.topics.site, self.topics.device

    def _availability(self, state: str) -> bytes:
        return encode(payloads.availability(state, *self._ids, time.time(), self.started_wall))

    def _record(self, leaf: Leaf, payload: Payload) -> None:
        spec = SPECS[leaf]
        assert spec.importance is not None, f"{leaf} is a state, not a record"
        self.outbox.put(
            self.topics.topic(leaf),
            encode(payload),
            message_id=payload["id"],
            qos=spec.qos,
            retain=spec.retain,
            importance=spec.importance,
            created_wall=payload["ts_ms"] / 1000,
        )
        self.link.wake()
        self._tell_disk_news()

    def _tell_disk_news(self) -> None:
        """Publish the outbox's news about the state disk: it refuses writes, or is back."""
        if self._publishing_disk_news:
            return  # the event itself goes through _record
        self.outbox.retry_if_due()
        notices = self.outbox.take_disk_notices()
        if not notices:
            return
        self._publishing_disk_news = True
        try:
            for notice in notices:
                self._tell_disk(notice)
        finally:
            self._publishing_disk_news = False

    def _tell_disk(self, notice: DiskNotice) -> None:
        dropped = notice.dropped
        counts = {
            "duration_s": round(notice.duration_s, 1),
            "kept_in_memory": notice.kept_in_memory,
            "dropped_stats": dropped[Importance.STATS],
            "dropped_events": dropped[Importance.EVENT],
            "dropped_reports": dropped[Importance.REPORT],
        }
        tally = (
            f"{notice.kept_in_memory} messages kept in memory, dropped"
            f" {dropped[Importance.STATS]} stats, {dropped[Importance.EVENT]} events and"
            f" {dropped[Importance.REPORT]} reports or plays"
        )
        if notice.refused:
            message = (
                f"the state disk refuses writes to the outbox ({notice.error}): messages are"
                f" kept in memory and sent from there until it takes writes again; so far"
                f" {tally}"
            )
        else:
            message = (
                f"the state disk takes writes again after {notice.duration_s:.0f} s; meanwhile"
                f" {tally}"
            )
        self._disk_drops_told = {} if not notice.refused else dict(dropped)
        self._disk_told_at = time.monotonic()
        self._publishing_disk_news = True
        try:
            self.error(
                "disk_refused" if notice.refused else "disk_back",
                message,
                file=str(self.outbox.path),
                counts=counts,
            )
        finally:
            self._publishing_disk_news = False

    def _state(self, leaf: Leaf, payload: Payload) -> None:
        spec = SPECS[leaf]
        assert spec.importance is None, f"{leaf} is a record, not a state"
        self.link.set_state(
            Message(self.topics.topic(leaf), encode(payload), spec.qos, spec.retain)
        )

    def _publish_today(self, wall: float, totals: DayTotals | None = None) -> None:
        totals = totals or self.today.totals(wall)
        payload = payloads.audience_today(
            *self._ids,
            wall,
            date=totals.date,
            passers_by=totals.passers_by,
            viewers=totals.viewers,
            segments=totals.segments,
            viewer_segments=totals.viewer_segments,
        )
        self._state(Leaf.AUDIENCE_TODAY, payload)

    def _home_assistant_status(self, payload: bytes) -> None:
        if payload.strip() == b"online":
            log.info("MQTT: Home Assistant (re)started: sending discovery and states again")
            self.link.resend_states()
