"""Hot reload of the rules file: a good edit takes over, a bad one is reported and ignored.

    watcher = RulesWatcher(Path("ads/rules.yaml"), last_good=Path("state/rules.last-good.yaml"))
    table = watcher.load_initial()          # the file, else the last good copy, else RulesError
    ...
    new_table = watcher.poll()              # None: unchanged, or changed but bad (reported)

The file is polled (mtime, size, inode) rather than watched with inotify: editors save by
writing a new file and renaming it, network shares and bind mounts do not always send
events, and one stat() a second costs nothing.

Each good version is copied to `last_good`, so a bad edit followed by a reboot still starts
with the rules that last worked, instead of a daemon that refuses to start and a black
screen. Media paths in the copy resolve against the original file's folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from edge_agent.ads.rules import RulesError, RuleTable, load_rules, parse_rules
from edge_agent.segments import DEFAULT_BRACKETS, Brackets

log = logging.getLogger(__name__)

Signature = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: missing


def _signature(path: Path) -> Signature:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


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

    def load_initial(self) -> RuleTable:
        """The rules to start with: the file if it is good, else the last good copy (with
        the file's problems reported), else `RulesError`."""
        self._signature = _signature(self.path)
        try:
            table = load_rules(self.path, self.brackets)
        except RulesError as error:
            fallback = self._load_last_good()
            if fallback is None:
                raise
            self._report(error)
            log.warning(
                "starting with the last good rules (version %s) until %s is fixed",
                fallback.version_id,
                self.path,
            )
            return fallback
        self._keep(table)
        return table

    def poll(self) -> RuleTable | None:
        """The new rules if the file changed and is good; None if unchanged or bad."""
        signature = _signature(self.path)
        if signature == self._signature:
            return None
        self._signature = signature
        try:
            table = load_rules(self.path, self.brackets)
        except RulesError as error:
            self._report(error)
            return None
        self.last_error = None
        self._keep(table)
        log.info("rules reloaded from %s (version %s)", self.path, table.version_id)
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

    def _keep(self, table: RuleTable) -> None:
        if self.last_good is None:
            return
        temporary = self.last_good.with_name(self.last_good.name + ".tmp")
        try:
            self.last_good.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(self.path.read_bytes())
            os.replace(temporary, self.last_good)  # atomic: never half a copy after a crash
        except OSError as error:
            log.warning("cannot keep a copy of the good rules in %s: %s", self.last_good, error)
            temporary.unlink(missing_ok=True)

    def _load_last_good(self) -> RuleTable | None:
        if self.last_good is None or not self.last_good.is_file():
            return None
        try:
            text = self.last_good.read_text(encoding="utf-8")
            # Parsed as if it were the rules file, so media resolve against its folder.
            return parse_rules(text, os.fspath(self.path), self.brackets)
        except (OSError, UnicodeDecodeError, RulesError) as error:
            log.warning("the last good rules copy %s is unusable too: %s", self.last_good, error)
            return None
