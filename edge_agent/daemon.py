"""The long-running process: wires source -> pipeline -> outputs, owns threads and signals.

The camera is read on its own thread (latest frame wins); everything else runs on the main
thread, one frame at a time. SIGTERM and SIGINT stop the loop, the open window is flushed,
the reader is stopped, and the process exits within about two seconds. Under systemd,
READY is sent once the models are loaded, the ads are on screen and telemetry runs, without
waiting for the first frame: a camera that is unplugged or broken must not keep the service
"activating" until systemd kills it and the screen goes dark. STATUS says whether frames
arrive. WATCHDOG pings come from the frame loop itself, which runs with or without frames,
so a wedged loop gets the process restarted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from edge_agent.ads.players.base import ShownReport
from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.rules import RulesError
from edge_agent.ads.stage import AdStage
from edge_agent.ads.values import Decision, PlayEvent, PlayStart
from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import AudienceReport, PersonNow
from edge_agent.config import Config
from edge_agent.pipeline import FramePipeline, FrameResult
from edge_agent.sources.factory import reader_for
from edge_agent.sources.values import Frame
from edge_agent.systemd import SystemdNotifier
from edge_agent.telemetry.stage import TelemetryStage
from edge_agent.telemetry.values import DaemonStats
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.annotate import annotate_boxes

log = logging.getLogger(__name__)
reports_log = logging.getLogger("edge_agent.reports")

_CPU_TEMPERATURE = Path("/sys/class/thermal/thermal_zone0/temp")
# Without a frame for this long the audience counts as unknown (camera gone): the ads fall
# back to what plays for nobody rather than targeting people who may have left.
_AUDIENCE_STALE_S = 2.0


def cpu_temperature_c() -> float | None:
    try:
        return int(_CPU_TEMPERATURE.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


@dataclass
class _StatsWindow:
    started: float
    frames: int = 0
    faces: int = 0
    classified: int = 0
    stage_ms: dict[str, float] = field(
        default_factory=lambda: {"detect": 0.0, "track": 0.0, "classify": 0.0, "audience": 0.0}
    )

    def add(self, result: FrameResult) -> None:
        times = result.times
        self.frames += 1
        self.faces += times.faces
        self.classified += times.classified
        self.stage_ms["detect"] += times.detect_ms
        self.stage_ms["track"] += times.track_ms
        self.stage_ms["classify"] += times.classify_ms
        self.stage_ms["audience"] += times.audience_ms


class Daemon:
    """One configured pipeline; `run()` blocks until stopped or the source ends."""

    def __init__(
        self,
        config: Config,
        *,
        on_report: Callable[[AudienceReport], None] | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_play_start: Callable[[PlayStart, Decision], None] | None = None,
        on_play_event: Callable[[PlayEvent], None] | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.on_report = on_report or self._log_report
        self.on_frame = on_frame
        self.on_play_start = on_play_start or self._log_play_start
        self.on_play_event = on_play_event or self._log_play_event
        self._source_was_ok = True
        self._next_source_check = 0.0
        self.notifier = notifier or SystemdNotifier()
        self.stop_event = threading.Event()
        self._last_debug_save = float("-inf")
        # The frames' clock less this machine's (monotonic, wall), as of the latest frame: 0
        # for a camera; a file read faster than real time runs on its own clock (VideoClock),
        # ahead of this one, and the audience's windows must close on that clock.
        self._frame_clock_offset = (0.0, 0.0)
        self._debug_save_failed = False
        if config.debug.save_annotated_frames_dir is not None:
            log.warning(
                "PRIVACY: debug.save_annotated_frames_dir is set: images of people's faces will"
                " be written to %s. Never run like this in a store.",
                config.debug.save_annotated_frames_dir,
            )
        # Built before anything runs, so a bad model file stops start-up with its name.
        self.pipeline = FramePipeline(
            VisionPipeline(config.vision_settings()),
            Tracker(config.tracker_settings()),
            DemographicsFusion(config.fusion_settings()),
            Audience(config.audience_settings()),
        )
        # Before the ads, so that a rules error at start-up can already be published.
        self.telemetry = (
            TelemetryStage(config.telemetry_settings()) if config.mqtt.enabled else None
        )
        self.ads = (
            AdStage.from_settings(
                config.ads_settings(),
                on_play_start=self._play_started,
                on_play_event=self._play_ended,
                on_rules_error=self._rules_error,
                on_shown=self._log_shown,
            )
            if config.ads.enabled
            else None
        )
        self.reader = reader_for(config.source_settings())

    def _save_debug_frame(self, frame: Frame, result: FrameResult) -> None:
        directory = self.config.debug.save_annotated_frames_dir
        if directory is None or not result.tracks.tracks:
            return
        # At most one image a second: enough to debug, not a recording.
        if frame.monotonic - self._last_debug_save < 1.0:
            return
        self._last_debug_save = frame.monotonic
        labelled = [
            (track.detection.box, f"#{track.track_id} {track.state.value}")
            for track in result.tracks.tracks
        ]
        try:
            annotate_boxes(frame.image, labelled, Path(directory) / f"frame_{frame.index:07d}.jpg")
        except (OSError, ValueError) as error:
            # A debugging aid that fails (the folder went away, the disk is full) must not stop
            # the counting: say so once and keep going without it.
            if not self._debug_save_failed:
                self._debug_save_failed = True
                log.warning("debug frames are not being written: %s", error)
            return
        self._debug_save_failed = False

    def stop(self, *_: object) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self, max_frames: int | None = None) -> int:
        """Process frames until stopped, the source ends or `max_frames` were processed.

        0 on a stop or the end of a file; 1 when a file source ended without a single frame
        (an empty video), so that systemd's Restart=on-failure sees a failure.
        """
        interval = self.config.logging.stats_interval_s
        watchdog_every = self.notifier.watchdog_interval_s()
        stats = _StatsWindow(time.monotonic())
        last_ping = 0.0
        processed = 0
        code = 0
        receiving = False
        people: tuple[PersonNow, ...] = ()
        last_frame_at = time.monotonic()
        if self.telemetry is not None:
            self.telemetry.start()  # connects in the background; messages wait in the outbox
        if self.ads is not None:
            # Before the camera: the screen shows something even if it never delivers a frame.
            try:
                self.ads.start(time.monotonic(), time.time())  # the web player logs its address
            except Exception:
                if self.telemetry is not None:
                    self.telemetry.stop()  # a rules error event may still reach the broker
                raise
        self.reader.start()
        log.info("reading from %s", self.config.source.spec)
        self.notifier.ready(f"waiting for frames from {self.config.source.spec}")
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if watchdog_every is not None and now - last_ping >= watchdog_every:
                    self.notifier.watchdog()
                    last_ping = now
                # With or without frames: the stats are what says that the source is down.
                if now - stats.started >= interval:
                    self._log_stats(stats)
                    stats = _StatsWindow(time.monotonic())
                frame = self.reader.latest(timeout=0.25)
                if frame is None:
                    if self.reader.ended:
                        code = self._source_ended()
                        break
                    if now - last_frame_at > _AUDIENCE_STALE_S:
                        # The camera is gone: its audience has left, and the clock, not the
                        # next frame, closes the windows (with nobody in them).
                        snapshot, report = self.pipeline.idle(*self._frame_clock())
                        people = ()
                        self._publish_current(snapshot.present, snapshot.viewers_now)
                        if report is not None:
                            self._report(report)
                    self._tick_ads(people)
                    self._watch_source(now)
                    continue
                if not receiving:
                    self.notifier.status(f"processing frames from {self.config.source.spec}")
                    receiving = True
                self._frame_clock_offset = (
                    frame.monotonic - time.monotonic(),
                    frame.wall_time - time.time(),
                )
                result = self.pipeline.process(frame)
                people, last_frame_at = result.snapshot.people, time.monotonic()
                self._tick_ads(people)
                self._publish_current(result.snapshot.present, result.snapshot.viewers_now)
                self._watch_source(last_frame_at)
                stats.add(result)
                self._save_debug_frame(frame, result)
                if self.on_frame is not None:
                    self.on_frame(result)
                if result.report is not None:
                    self._report(result.report)
                processed += 1
                if max_frames is not None and processed >= max_frames:
                    break
        finally:
            self.notifier.stopping()
            self.reader.stop(timeout=1.0)
            self._report(self.pipeline.flush(*self._frame_clock()))
            if self.ads is not None:
                self.ads.stop(time.monotonic(), time.time())
            if self.telemetry is not None:
                # Last: the final report and play event are in the outbox by now.
                self.telemetry.stop()
        return code

    def _frame_clock(self) -> tuple[float, float]:
        """Now, on the frames' clock: (monotonic, wall)."""
        monotonic_offset, wall_offset = self._frame_clock_offset
        return time.monotonic() + monotonic_offset, time.time() + wall_offset

    def _source_ended(self) -> int:
        """The exit code once a finite source ended: a failure if it never gave a frame."""
        source = self.reader.stats()
        if source.frames_delivered > 0:
            log.info("the source ended")
            return 0
        log.error(
            "the source %s ended without a single frame: an empty or damaged file?",
            self.config.source.spec,
        )
        if self.telemetry is not None:
            self.telemetry.error("source_lost", f"no frames from {self.config.source.spec}")
        return 1

    def _tick_ads(self, people: tuple[PersonNow, ...]) -> None:
        if self.ads is not None:
            self.ads.tick(people, time.monotonic(), time.time())

    def _report(self, report: AudienceReport) -> None:
        self.on_report(report)
        if self.telemetry is not None:
            self.telemetry.report(report)

    def _play_started(self, play: PlayStart, decision: Decision) -> None:
        self.on_play_start(play, decision)
        if self.telemetry is not None:
            self.telemetry.play_start(play, decision)

    def _play_ended(self, event: PlayEvent) -> None:
        self.on_play_event(event)
        if self.telemetry is not None:
            self.telemetry.play_event(event)

    def _rules_error(self, error: RulesError) -> None:
        RulesWatcher.log_error(error)
        if self.telemetry is not None:
            self.telemetry.rules_error(error)

    def _publish_current(self, present: int, viewers_now: int) -> None:
        if self.telemetry is not None:
            self.telemetry.current(present, viewers_now, time.monotonic(), time.time())

    def _watch_source(self, now: float) -> None:
        """An error event (and the systemd status) when the camera stops delivering, another
        when it is back."""
        if now < self._next_source_check:
            return
        self._next_source_check = now + 1.0
        source = self.reader.stats()
        ok = source.connected and not source.stalled
        if ok == self._source_was_ok:
            return
        self._source_was_ok = ok
        spec = self.config.source.spec
        if ok:
            self.notifier.status(f"processing frames from {spec}")
            if self.telemetry is not None:
                self.telemetry.error("source_back", f"the camera delivers frames again: {spec}")
        else:
            reason = source.last_error or ("stalled" if source.stalled else "not connected")
            self.notifier.status(f"no frames from {spec}: {reason}; retrying")
            if self.telemetry is not None:
                self.telemetry.error("source_lost", f"no frames from {spec}: {reason}")

    def _log_report(self, report: AudienceReport) -> None:
        reports_log.info(json.dumps(report.to_json(), sort_keys=True))

    def _log_play_start(self, play: PlayStart, decision: Decision) -> None:
        reports_log.info(json.dumps(play.to_json(decision), sort_keys=True))

    def _log_play_event(self, event: PlayEvent) -> None:
        reports_log.info(json.dumps(event.to_json(), sort_keys=True))

    @staticmethod
    def _log_shown(shown: ShownReport) -> None:
        log.debug(
            "play %s on screen %.0f ms after the decision", shown.play_id, shown.latency_s * 1000
        )

    def _log_stats(self, window: _StatsWindow) -> None:
        elapsed = max(time.monotonic() - window.started, 1e-6)
        frames = max(window.frames, 1)
        source = self.reader.stats()
        stats = DaemonStats(
            interval_s=round(elapsed, 2),
            fps=round(window.frames / elapsed, 2),
            faces_per_frame=round(window.faces / frames, 2),
            classified_per_frame=round(window.classified / frames, 3),
            detect_ms=round(window.stage_ms["detect"] / frames, 3),
            track_ms=round(window.stage_ms["track"] / frames, 3),
            classify_ms=round(window.stage_ms["classify"] / frames, 3),
            audience_ms=round(window.stage_ms["audience"] / frames, 3),
            frames_skipped=source.frames_skipped,
            reconnects=source.reconnects,
            source_connected=source.connected,
            source_stalled=source.stalled,
            cpu_temperature_c=cpu_temperature_c(),
        )
        log.info(json.dumps({"type": "stats", **dataclasses.asdict(stats)}, sort_keys=True))
        self.notifier.status(f"{stats.fps} fps, {source.frames_skipped} skipped")
        if self.telemetry is not None:
            self.telemetry.stats(stats, time.time())
