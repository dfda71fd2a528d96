"""How the MQTT link behaves while the broker keeps failing: when to try again, and how often
to say so.

Reconnects back off exponentially, with jitter, and the back-off is NOT reset by a connection
the broker accepts: only by one that stays up for `STABLE_FACTOR` x `reconnect_max_s`. A broker
that accepts the login and then closes the connection after a publish (what MQTT 3.1.1 lets a
broker do when its ACL denies a topic) would otherwise be reconnected to every second for ever.
Such a drop waits longer still (`DROPPED_FIRST_FACTOR`, `DROPPED_MAX_FACTOR`).

The warnings about such faults (refused publishes, ACL drops, failed connects) go through a
`WarningLimiter`, so a fault that repeats all day says so in a few lines instead of thousands.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

# A connection that stays up this many times reconnect_max_s (60 s by default) was a good
# one: the back-off starts again at reconnect_min_s.
STABLE_FACTOR = 1.0
# A connection the broker accepted and then closed: retrying at once cannot help (the broker
# is up and will do it again), so the first wait is this many times reconnect_min_s (10 s)
# and the longest this many times reconnect_max_s (5 minutes).
DROPPED_FIRST_FACTOR = 10.0
DROPPED_MAX_FACTOR = 5.0
# Each wait is lengthened by up to this fraction at random, so that the displays of a store
# that lost its broker together do not all come back in the same second.
JITTER = 0.25
# The same warning at most once per this many seconds; the repeats in between are counted
# and the count goes out with the next one.
WARNING_INTERVAL_S = 300.0


class ReconnectBackoff:
    """How long to wait before the next connection attempt.

    `failed()` for an attempt that did not connect, `dropped()` for a connection the broker
    accepted and closed again before it was stable; both return the wait in seconds. Only
    `stable()` (the connection stayed up long enough) starts the schedule again."""

    def __init__(
        self, first_s: float, max_s: float, *, jitter: Callable[[], float] = random.random
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.dropped_first_s = first_s * DROPPED_FIRST_FACTOR
        self.dropped_max_s = max(max_s * DROPPED_MAX_FACTOR, self.dropped_first_s)
        self.stable_after_s = max_s * STABLE_FACTOR
        self._jitter = jitter
        self.attempts = 0  # waits since the last stable connection

    def _wait(self, first_s: float, max_s: float) -> float:
        base = min(max_s, first_s * 2.0 ** min(self.attempts, 60))
        self.attempts += 1
        return base * (1.0 + JITTER * self._jitter())

    def failed(self) -> float:
        return self._wait(self.first_s, self.max_s)

    def dropped(self) -> float:
        return self._wait(self.dropped_first_s, self.dropped_max_s)

    def stable(self) -> None:
        self.attempts = 0


class WarningLimiter:
    """Logs a warning, but the same text at most once per `interval_s`; the repeats in
    between are counted and reported with the next one, so a fault that repeats all day
    says so in a few lines instead of thousands."""

    def __init__(self, logger: logging.Logger, interval_s: float = WARNING_INTERVAL_S) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # text -> (logged at, repeats since)

    def warning(
        self, text: str, *args: object, level: int = logging.WARNING, exc_info: bool = False
    ) -> bool:
        """True if it was logged now."""
        now = time.monotonic()
        with self._lock:
            logged_at, repeats = self._last.get(text, (float("-inf"), 0))
            if now - logged_at < self.interval_s:
                self._last[text] = (logged_at, repeats + 1)
                return False
            self._last[text] = (now, 0)
        if repeats:
            minutes = (now - logged_at) / 60.0
            text += f" (and {repeats} more times in the last {minutes:.0f} min)"
        self.logger.log(level, text, *args, exc_info=exc_info)
        return True
