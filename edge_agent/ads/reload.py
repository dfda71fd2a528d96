"""Hot reload of the rules file: a good edit takes over, a bad one is reported and ignored.

    watcher = RulesWatcher(Path("ads/rules.yaml"), last_good=Path("state/rules.last-good.yaml"))
    table = watcher.load_initial()          # the file, else the last good copy, else RulesError
    ...
    new_table = watcher.poll()              # None: unchanged, or changed but bad (reported)
    new_table = watcher.poll_in_background()  # the same, loading on a worker thread: the
                                            # frame loop's way, never blocking it

The file is polled (mtime, size, inode) rather than watched with inotify: editors save by
writing a new file and renaming it, network shares and bind mounts do not always send
events, and one stat() a second costs nothing.

Each good version is copied to `last_good`, so a bad edit followed by a reboot still starts
with the rules that last worked, instead of a daemon that refuses to start and a black
screen. Media paths in the copy resolve against the original file's folder. No failure of
reading, parsing or validating ends the daemon: it is reported and the last good rules play on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from edge_agent.ads.rules import (
    TOP_LEVEL,
    RulesError,
    RuleTable,
    load_rules_with_bytes,
    parse_rules,
)
from edge_agent.segments import DEFAULT_BRACKETS, Brackets
from edge_agent.validated_yaml import MAX_YAML_BYTES, Problem, ProblemsError, read_user_text

log = logging.getLogger(__name__)

Signature = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: missing


def _signature(path: Path) -> Signature:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class _Load:
    """One load of the rules file on a worker thread; `outcome` is set when it is done."""

    def __init__(self, load: Callable[[], RuleTable | RulesError]) -> None:
        self.outcome: RuleTable | RulesError | None = None
        self.done = threading.Event()
        self._load = load
        self.thread = threading.Thread(target=self._run, name="rules-reload", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.outcome = self._load()
        finally:
            self.done.set()


class RulesWatcher:
    """Loads the rules file and notices when it changes."""

    def __init__(
        self,
        path: Path,
        *,
        brackets: Brackets = DEFAULT_BRACKETS,
        last_good: Path | None = None,
        on_error: Callable[[RulesError], None] | None = None,
    ) -> None:
        self.path = path
        self.brackets = brackets
        self.last_good = last_good
        self.on_error = on_error or self.log_error
        self.last_error: RulesError | None = None
        self._signature: Signature = None
        self._pending: _Load | None = None
        self._keep_failing = False  # the last good copy could not be written: said once

    def load_initial(self) -> RuleTable:
        """The rules to start with: the file if it is good, else the last good copy (with
        the file's problems reported), else `RulesError`."""
        self._signature = _signature(self.path)
        outcome = self._load_and_keep()
        if isinstance(outcome, RuleTable):
            return outcome
        fallback = self._load_last_good()
        if fallback is None:
            raise outcome
        self._report(outcome)
        log.warning(
            "starting with the last good rules (version %s) until %s is fixed",
            fallback.version_id,
            self.path,
        )
        return fallback

    def poll(self) -> RuleTable | None:
        """The new rules if the file changed and is good; None if unchanged or bad. Loads
        on the calling thread (see `poll_in_background` for the frame loop)."""
        signature = _signature(self.path)
        if signature == self._signature:
            return None
        self._signature = signature
        return self._settle(self._load_and_keep())

    def poll_in_background(self) -> RuleTable | None:
        """`poll` that never blocks: a changed file is read, parsed, validated and copied on
        a worker thread, and its outcome is taken (and reported) by a later call. The frame
        loop calls this, so a slow disk or a big file cannot starve the watchdog."""
        pending = self._pending
        if pending is not None:
            if not pending.done.is_set():
                return None
            self._pending = None
            outcome = pending.outcome
            if outcome is None:  # the worker died of something `_load_and_keep` let through
                outcome = _unreadable(self.path, "the reload failed unexpectedly")
            return self._settle(outcome)
        signature = _signature(self.path)
        if signature == self._signature:
            return None
        self._signature = signature
        self._pending = _Load(self._load_and_keep)
        return None

    def wait_for_reload(self, timeout_s: float) -> bool:
        """True once no background load is running (for tests and shutdown)."""
        pending = self._pending
        return pending is None or pending.done.wait(timeout_s)

    def _settle(self, outcome: RuleTable | RulesError) -> RuleTable | None:
        if isinstance(outcome, RulesError):
            self._report(outcome)
            return None
        self.last_error = None
        log.info("rules reloaded from %s (version %s)", self.path, outcome.version_id)
        return outcome

    def _load_and_keep(self) -> RuleTable | RulesError:
        """The table or the reason there is none; never raises, so that no edit of the file
        can end the daemon. A good table's bytes become the last good copy."""
        try:
            table, raw = load_rules_with_bytes(self.path, self.brackets)
        except RulesError as error:
            return error
        except Exception as error:  # a check this module does not know of: still a rejection
            log.debug("unexpected error loading %s", self.path, exc_info=True)
            return _unreadable(self.path, f"{type(error).__name__}: {error}")
        self._keep(raw)
        return table

    def _report(self, error: RulesError) -> None:
        self.last_error = error
        try:
            self.on_error(error)
        except Exception:
            log.exception("the rules error handler failed")

    @staticmethod
    def log_error(error: RulesError) -> None:
        log.error("rules file rejected, the last good rules keep running:\n%s", error)

    def _keep(self, raw: bytes) -> None:
        """Write `raw` (the bytes that were validated) as the last good copy. A full or
        read-only disk is said once, until a copy succeeds again: the rules still run."""
        if self.last_good is None:
            return
        temporary = self.last_good.with_name(self.last_good.name + ".tmp")
        try:
            self.last_good.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(raw)
            os.replace(temporary, self.last_good)  # atomic: never half a copy after a crash
        except OSError as error:
            if not self._keep_failing:
                log.warning(
                    "cannot keep a copy of the good rules in %s: %s (said once until it works)",
                    self.last_good,
                    error,
                )
            self._keep_failing = True
            with contextlib.suppress(OSError):  # read-only: there is no temporary either
                temporary.unlink(missing_ok=True)
            return
        if self._keep_failing:
            log.info("the copy of the good rules in %s is written again", self.last_good)
        self._keep_failing = False

    def _load_last_good(self) -> RuleTable | None:
        if self.last_good is None:
            return None
        try:
            _, text = read_user_text(self.last_good, MAX_YAML_BYTES, "last good rules copy")
            # Parsed as if it were the rules file, so media resolve against its folder.
            return parse_rules(text, os.fspath(self.path), self.brackets)
        except ProblemsError as error:
            if self.last_good.exists():
                log.warning(
                    "the last good rules copy %s is unusable too: %s", self.last_good, error
                )
            return None
        except Exception as error:
            log.warning("the last good rules copy %s is unusable too: %s", self.last_good, error)
            return None


def _unreadable(path: Path, reason: str) -> RulesError:
    return RulesError(
        [Problem(f"cannot load the rules: {reason}", os.fspath(path), 1, key_path=TOP_LEVEL)]
    )
