"""The outbox's bound, and the order in which it drops: stats first, then events, oldest first.

The bound is on pending messages, on payload bytes, and on the files: the database's pages in
use, the WAL (checkpointed and truncated at an eighth of the room) and the -shm must fit in
`max_file_bytes` and in the disk's free space, less a reserve for the other state files. Reports
are never dropped here; past the bound with only reports left, one warning says so.

`FileBound` is a part of `Outbox` (outbox.py): it works on the Outbox's connection and state,
inside the Outbox's transactions, under its lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import Counter
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.telemetry.outbox_store import Importance

# The outbox's one logger, whichever of its modules speaks: its lines read as they always did.
log = logging.getLogger("edge_agent.telemetry.outbox")

# The file bound: the WAL is checkpointed and truncated at an eighth of the room, between
# these pages; a transaction may add SLACK_PAGES on top; the -shm file is 32 KB.
DEFAULT_WAL_PAGES = 1000  # SQLite's own default (4 MB)
MIN_WAL_PAGES = 4
SLACK_PAGES = 24
SHM_BYTES = 32 * 1024
MIN_FILE_BYTES = 256 * 1024
MAX_DROP_BATCH = 16
REARM_SHARE = 0.9  # the over-bound warning re-arms below this share of the bound
# Left free on the state disk for the other state files: 1/16 of it, at most this.
MAX_RESERVE_BYTES = 64 * 1024 * 1024


class FileBound:
    """The Outbox's bound: what its files may take, and what to drop to stay within it."""

    path: Path | str
    max_messages: int
    max_bytes: int
    max_file_bytes: int | None
    _folder: str
    _page_size: int
    _wal_pages: int
    _well_within: bool
    _over_bound_warned: bool
    _writable: bool
    _db: sqlite3.Connection | None

    # The rest of the Outbox, for type checkers only: at run time the Outbox's own methods
    # (or the other part's) answer, never a stub here.
    if TYPE_CHECKING:

        def file_bytes(self) -> int:
            raise NotImplementedError

        def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
            raise NotImplementedError

    def _room(self) -> int | None:
        """Bytes the outbox's files may take now: its bound, and what the disk has left (less
        a reserve for the other state files); None when neither applies."""
        if not isinstance(self.path, Path):
            return self.max_file_bytes
        try:
            disk = os.statvfs(self._folder)
        except OSError:
            return self.max_file_bytes
        own = self.file_bytes()
        room = own + disk.f_bavail * disk.f_frsize - _reserve(disk)
        return room if self.max_file_bytes is None else min(self.max_file_bytes, room)

    def _disk_has_room(self) -> bool:
        """The state disk has more than its reserve free (or cannot say)."""
        assert isinstance(self.path, Path)
        try:
            disk = os.statvfs(self.path.parent)
        except OSError:
            return True
        return disk.f_bavail * disk.f_frsize > _reserve(disk)

    def _set_wal_budget(self, db: sqlite3.Connection, room: int | None) -> int:
        """Checkpoint (and truncate) the WAL at an eighth of the room, at most SQLite's default
        of 1,000 pages; returns the WAL's budget in bytes."""
        pages = DEFAULT_WAL_PAGES
        if room is not None:
            pages = max(MIN_WAL_PAGES, min(DEFAULT_WAL_PAGES, room // 8 // self._page_size))
        if pages != self._wal_pages:
            db.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            db.execute(f"PRAGMA journal_size_limit = {pages * self._page_size}")
            self._wal_pages = pages
        return pages * self._page_size

    def _enforce_bound(
        self, db: sqlite3.Connection, room: int | None
    ) -> tuple[Counter[Importance], int | None]:
        """Drop stats, then events, oldest first, until within the bound.

        The bound is on messages, on payload bytes, and on the file: the database's pages in
        use plus the WAL's budget, a transaction's slack and the shared-memory file must fit
        in `room`. Returns what was dropped, and how many reports are waiting if the outbox is
        still over its bound (then only reports are left), else None.
        """
        pending, size = db.execute("SELECT SUM(pending), SUM(bytes) FROM totals").fetchone()
        wal_budget = self._set_wal_budget(db, room)
        allowance = None
        if room is not None:
            slack = SLACK_PAGES * self._page_size
            allowance = room - wal_budget - slack - SHM_BYTES
        used = self._used_bytes(db) if allowance is not None else 0

        def over_file() -> bool:
            return allowance is not None and used > allowance

        drops: Counter[Importance] = Counter()
        for importance in (Importance.STATS, Importance.EVENT):
            while pending > self.max_messages or size > self.max_bytes or over_file():
                batch = 1
                if over_file() and pending:
                    # Pages free up a few rows at a time: drop about the excess at once.
                    per_row = max(1, used // pending)
                    batch = min(MAX_DROP_BATCH, max(1, -(-(used - allowance) // per_row)))
                deleted = db.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                    " WHERE importance = ? ORDER BY seq LIMIT ?) RETURNING size",
                    (int(importance), batch),
                ).fetchall()
                if not deleted:
                    break
                pending -= len(deleted)
                size -= sum(row[0] for row in deleted)
                drops[importance] += len(deleted)
                if allowance is not None:
                    used = self._used_bytes(db)
            if drops[importance]:
                db.execute(
                    "UPDATE totals SET dropped = dropped + ? WHERE importance = ?",
                    (drops[importance], int(importance)),
                )
        over = pending > self.max_messages or size > self.max_bytes or over_file()
        # Re-armed only well within the bound: near it, the file's pages come and go by one.
        self._well_within = (
            pending <= REARM_SHARE * self.max_messages
            and size <= REARM_SHARE * self.max_bytes
            and (allowance is None or used <= REARM_SHARE * allowance)
        )
        return drops, (pending if over and pending else None)

    def _used_bytes(self, db: sqlite3.Connection) -> int:
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        return (pages - free) * self._page_size

    def _reports_over_bound(self) -> int | None:
        """How many messages are pending if over the bound (then all reports), else None."""
        assert self._db is not None
        with self._transaction() as db:
            _, reports_over = self._enforce_bound(db, self._room())
        return reports_over

    def _note_bound(self, reports_over: int | None) -> None:
        """Warn once each time the outbox crosses its bound with only reports left."""
        if reports_over is None:
            if self._well_within:
                self._over_bound_warned = False
        elif not self._over_bound_warned:
            self._over_bound_warned = True
            log.warning(
                "outbox over its bound with %d reports waiting: the broker has been unreachable"
                " for a long time, or the disk is nearly full (%s; bound %d messages, %d bytes,"
                " %s on disk; reports are kept, never dropped)",
                reports_over,
                self.path,
                self.max_messages,
                self.max_bytes,
                "the free space" if self.max_file_bytes is None else f"{self.max_file_bytes:,}",
            )

    def _checkpoint_truncate(self) -> None:
        """Copy the WAL into the database and cut it to zero bytes (best effort)."""
        if self._db is None or not self._writable:
            return
        with suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _reserve(disk: os.statvfs_result) -> int:
    """Free space left to the other state files: a sixteenth of the disk, at most
    MAX_RESERVE_BYTES."""
    return min(disk.f_blocks * disk.f_frsize // 16, MAX_RESERVE_BYTES)
