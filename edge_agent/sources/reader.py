"""A reader thread that always has the newest frame ready and keeps a source alive.

The pipeline is slower than the camera. Queuing frames would make it work further and further
in the past, so the reader keeps exactly one: each new frame replaces the one not yet taken,
and the replaced ones are counted as skipped. When the source fails, stalls (open, but no
frame for `stall_timeout` seconds) or cannot be opened, the reader closes it, waits with
exponential back-off, and builds a fresh one from the factory. None of that raises into the
daemon: it shows in stats() and the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Self

from edge_agent.sources.base import EndOfStream, FrameSource
from edge_agent.sources.values import Frame, SourceStats

log = logging.getLogger(__name__)


class LatestFrameReader:
    """Reads a source on a daemon thread and hands out only the newest frame.

    `factory` builds an unopened source; it is called again for every reconnect, so it
    should be cheap. Frames handed out are renumbered 0, 1, 2, ... across reconnects.

    `stop()` returns within its timeout even when the source is blocked inside a read that
    cannot be interrupted (OpenCV); the thread then closes the source and ends as soon as
    that read returns.
    """

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        *,
        stall_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        poll_interval: float = 0.5,
        name: str = "camera",
        lossless: bool = False,
    ) -> None:
        """`lossless`: hand over every frame, the reader waiting for the consumer instead of
        replacing a frame not yet taken. For files read as fast as the pipeline goes (not in
        real time), where a dropped frame is lost work, not a stale picture."""
        if stall_timeout <= 0 or backoff_initial <= 0 or poll_interval <= 0:
            raise ValueError("stall_timeout, backoff_initial and poll_interval must be positive")
        if backoff_max < backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        self._factory = factory
        self.stall_timeout = stall_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # How long one read may wait before the thread looks at stop and stall again.
        self.poll_interval = poll_interval
        self.name = name
        self.lossless = lossless
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        # Everything below is guarded by _cond.
        self._pending: Frame | None = None
        self._next_index = 0
        self._frames_read = 0
        self._frames_delivered = 0
        self._frames_skipped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._stalled = False
        self._connected = False
        self._ended = False
        self._retry_in = 0.0
        self._last_progress = 0.0  # monotonic time of the last open or frame

    # --- the caller's side -------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"reader {self.name!r} was already started")
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()
        return self

    def latest(self, timeout: float) -> Frame | None:
        """The newest frame not handed out before, waiting up to `timeout` seconds for one.
        None on timeout, after the source ended, or once the reader is stopped."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._pending is not None or self._ended or self._stop.is_set(),
                timeout,
            )
            if self._stop.is_set():
                return None
            frame, self._pending = self._pending, None
            if frame is not None:
                self._frames_delivered += 1
                self._cond.notify_all()  # a lossless reader waits for this
            return frame

    def stats(self) -> SourceStats:
        with self._cond:
            silent = time.monotonic() - self._last_progress > self.stall_timeout
            return SourceStats(
                frames_read=self._frames_read,
                frames_delivered=self._frames_delivered,
                frames_skipped=self._frames_skipped,
                reconnects=self._reconnects,
                last_error=self._last_error,
                # Also true while the thread is stuck in a read that does not time out.
                stalled=self._stalled or (self._connected and silent),
                connected=self._connected,
                ended=self._ended,
                retry_in_s=self._retry_in,
            )

    @property
    def ended(self) -> bool:
        """True once a finite source (a file without loop) has delivered its last frame."""
        with self._cond:
            return self._ended

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to end and wait up to `timeout` s; True if it has ended."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "%s reader still blocked in its source after %.1f s; it will end on its own",
                self.name,
                timeout,
            )
            return False
        return True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the thread's side -------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff_initial
        first = True
        while not self._stop.is_set():
            if not first:
                with self._cond:
                    self._reconnects += 1
            first = False
            delivered = self._session()
            if self._stop.is_set() or self.ended:
                break
            if delivered:  # it worked for a while: start the back-off again from the bottom
                delay = self.backoff_initial
            with self._cond:
                self._retry_in = delay
            log.info("%s: reconnecting in %.1f s", self.name, delay)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max)
        with self._cond:
            self._connected = False
            self._cond.notify_all()
        log.debug("%s reader thread ended", self.name)

    def _session(self) -> bool:
        """Open one source and read it until it fails, stalls, ends or we stop. True when at
        least one frame came through."""
        source: FrameSource | None = None
        delivered = False
        try:
            source = self._factory()
            source.open()
            with self._cond:
                self._connected = True
                self._retry_in = 0.0
                self._last_progress = time.monotonic()
            log.info("%s: reading %s", self.name, source.describe())
            last_frame = time.monotonic()
            while not self._stop.is_set():
                remaining = self.stall_timeout - (time.monotonic() - last_frame)
                frame = source.read(min(self.poll_interval, max(remaining, 0.01)))
                if frame is not None:
                    delivered = True
                    self._publish(frame)
                    # After the publish: a lossless one may wait for the consumer, not a stall.
                    last_frame = time.monotonic()
                elif time.monotonic() - last_frame >= self.stall_timeout:
                    message = f"{source.describe()}: no frame for {self.stall_timeout:g} s"
                    log.warning("%s: %s; reopening", self.name, message)
                    with self._cond:
                        self._stalled = True
                        self._last_error = message
                    break
        except EndOfStream as end:
            log.info("%s: %s", self.name, end)
            with self._cond:
                self._ended = True
        except Exception as error:  # any failure of any source means reconnect, never a crash
            log.warning("%s: %s", self.name, error)
            with self._cond:
                self._last_error = f"{type(error).__name__}: {error}"
        finally:
            if source is not None:
                try:
                    source.close()
                except Exception as error:
                    log.warning("%s: closing the source failed: %s", self.name, error)
            with self._cond:
                self._connected = False
                self._cond.notify_all()
        return delivered

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: self._pending is None or self._stop.is_set())
            self._frames_read += 1
            if self._pending is not None:
                self._frames_skipped += 1
            self._pending = replace(frame, index=self._next_index)
            self._next_index += 1
            self._stalled = False
            # The wall clock: a file's frames carry the file's own time (VideoClock).
            self._last_progress = time.monotonic()
            self._cond.notify_all()
