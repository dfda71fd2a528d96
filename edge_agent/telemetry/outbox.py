"""The durable outbox: every telemetry message is on disk before it is sent, until acknowledged.

The MQTT client drives it:

    put() ─▶ SQLite (WAL) ─pending()─▶ publish ─mark_sent()─▶ PUBACK ─ack()─▶ deleted

- `put` writes a message in one small transaction and returns its `seq`, the store's
  AUTOINCREMENT row id. Seqs never go backwards, not even across restarts, so `pending`
  (oldest first by seq) replays messages in the order they were put.
- A message is deleted only by `ack`: after the broker's PUBACK for QoS 1, right after publish
  for QoS 0. After a reconnect the sender starts again from `pending()`, so everything not
  acknowledged is sent again, in order. Delivery is at least once: a re-sent message carries
  the same `message_id`, by which consumers drop the duplicate.
- The store is bounded (`max_messages`, `max_bytes`), and so are its files: the database's
  pages in use, the WAL (checkpointed and truncated at an eighth of the room) and the -shm
  must fit in `max_file_bytes` and in the disk's free space, less a reserve for the other
  state files. Over the bound the oldest STATS message goes first, then the oldest EVENT;
  REPORTs are never dropped, even over the bound.
- The disk may still refuse a write (full, read-only, failing): `put` then keeps the message in
  memory (bounded, dropped in the same order, the oldest report only when nothing else is
  left), `pending` hands it to the sender from there, and every few seconds the disk is tried
  again; once it takes writes, memory is written to the file in order, with the seqs already
  handed out. Nothing here raises because of the disk; `take_disk_notices` says when it
  started refusing and when it is back, with what was kept and dropped meanwhile.
- `replace_key` keeps only the newest pending value of a state topic (current viewers, say).

One process owns one outbox file; the producer (vision loop) and the MQTT network thread share
one `Outbox`, which serialises them with a lock. Nothing here touches the network, so `put`
costs the producer one local transaction and never waits on the broker.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Literal

log = logging.getLogger(__name__)

MEMORY = ":memory:"  # an in-memory outbox, for tests only: nothing survives
SCHEMA_VERSION = 1  # kept in PRAGMA user_version
BUSY_TIMEOUT_MS = 5_000  # only another process (an operator's sqlite3 shell) can hold the lock

Synchronous = Literal["NORMAL", "FULL"]

# While the state disk refuses writes, messages wait in memory up to these bounds.
MEMORY_MAX_MESSAGES = 10_000
MEMORY_MAX_BYTES = 16 * 1024 * 1024
RETRY_S = 5.0  # how often a refusing disk is tried again
FLUSH_CHUNK = 200  # messages written from memory per transaction when the disk is back
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


class Importance(IntEnum):
    """What the bound may drop, lowest first."""

    STATS = 0  # periodic health and counters: dropped when full, oldest first
    EVENT = 1  # errors, decisions: dropped only after all stats are gone
    REPORT = 2  # audience reports, play events: never dropped (in memory, only as a last resort)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    seq: int  # the store's row id: the global order, increasing across restarts
    message_id: str  # the payload's unique id, for consumers' de-duplication
    topic: str
    payload: bytes
    qos: int  # 0 or 1
    retain: bool
    importance: Importance
    created_wall: float  # time.time() when it was put
    attempts: int  # how many times mark_sent() counted it as published
    last_attempt_wall: float | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    size_bytes: int  # sum of the pending payloads' lengths
    by_importance: dict[Importance, int]
    dropped_total: dict[Importance, int]  # by the bound, since the file was created
    dropped_since_open: dict[Importance, int]
    oldest_age_s: float | None  # None when nothing is pending
    in_memory: int = 0  # kept in memory because the disk refuses writes
    disk_refused: bool = False  # the state disk refuses the outbox's writes now
    file_bytes: int = 0  # the database, its WAL and -shm on disk


@dataclass(frozen=True, slots=True)
class DiskNotice:
    """The state disk started refusing the outbox's writes (`refused`), or takes them again."""

    refused: bool
    error: str  # what SQLite said when the disk first refused
    since_wall: float  # when it first refused
    duration_s: float  # so far, or in all once it is back
    kept_in_memory: int  # messages kept in memory meanwhile (sent from there, or saved later)
    dropped: dict[Importance, int]  # meanwhile, by the memory bound or the file bound


class _Corrupt(Exception):
    """The file is not a usable SQLite database."""


# Statements, not one script: executescript() would commit the transaction they run in.
_SCHEMA = (
    """CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        size INTEGER NOT NULL,
        qos INTEGER NOT NULL CHECK (qos IN (0, 1)),
        retain INTEGER NOT NULL CHECK (retain IN (0, 1)),
        importance INTEGER NOT NULL CHECK (importance IN (0, 1, 2)),
        replace_key TEXT,
        created_wall REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt_wall REAL
    )""",
    # The bound's "oldest message of the lowest importance" is one step down this index.
    "CREATE INDEX messages_by_importance ON messages (importance, seq)",
    "CREATE INDEX messages_by_replace_key ON messages (replace_key) WHERE replace_key IS NOT NULL",
    # What is pending per importance, kept by the triggers in the same transaction as each
    # insert and delete: put() checks the bound by reading three rows, not by counting the
    # table. `dropped` is the running total of drops by the bound, which outlives restarts.
    """CREATE TABLE totals (
        importance INTEGER PRIMARY KEY,
        pending INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0
    )""",
    "INSERT INTO totals (importance) VALUES (0), (1), (2)",
    """CREATE TRIGGER messages_inserted AFTER INSERT ON messages BEGIN
        UPDATE totals SET pending = pending + 1, bytes = bytes + NEW.size
        WHERE importance = NEW.importance;
    END""",
    """CREATE TRIGGER messages_deleted AFTER DELETE ON messages BEGIN
        UPDATE totals SET pending = pending - 1, bytes = bytes - OLD.size
        WHERE importance = OLD.importance;
    END""",
)

_COLUMNS = (
    "seq, message_id, topic, payload, qos, retain, importance, created_wall, attempts,"
    " last_attempt_wall"
)


@dataclass(slots=True)
class _Held:
    """A message kept in memory while the state disk refuses writes (mutable: attempts)."""

    seq: int
    message_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    importance: Importance
    replace_key: str | None
    created_wall: float
    attempts: int = 0
    last_attempt_wall: float | None = None

    def message(self) -> OutboxMessage:
        return OutboxMessage(
            self.seq,
            self.message_id,
            self.topic,
            self.payload,
            self.qos,
            self.retain,
            self.importance,
            self.created_wall,
            self.attempts,
            self.last_attempt_wall,
        )


@dataclass(slots=True)
class _Refusal:
    """One stretch of time in which the state disk refused the outbox's writes."""

    error: str
    since_wall: float
    since_monotonic: float
    kept: int = 0  # messages that went to memory
    dropped: Counter[Importance] = field(default_factory=Counter)

    def notice(self, *, refused: bool) -> DiskNotice:
        return DiskNotice(
            refused=refused,
            error=self.error,
            since_wall=self.since_wall,
            duration_s=time.monotonic() - self.since_monotonic,
            kept_in_memory=self.kept,
            dropped={importance: self.dropped[importance] for importance in Importance},
        )


class Outbox:
    """A bounded, ordered, crash-safe queue of MQTT messages in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_messages: int = 100_000,
        max_bytes: int = 200 * 1024 * 1024,
        max_file_bytes: int | None = None,
        synchronous: Synchronous = "NORMAL",
        memory_max_messages: int = MEMORY_MAX_MESSAGES,
        memory_max_bytes: int = MEMORY_MAX_BYTES,
        retry_s: float = RETRY_S,
    ) -> None:
        """`max_bytes` bounds the pending payloads; `max_file_bytes` (None: only the disk's
        free space) the files on disk: the database, its WAL and its shared-memory file."""
        if max_messages < 1 or max_bytes < 1 or memory_max_messages < 1 or memory_max_bytes < 1:
            raise ValueError(f"outbox bounds must be positive: {max_messages=}, {max_bytes=}")
        if max_file_bytes is not None and max_file_bytes < MIN_FILE_BYTES:
            raise ValueError(f"max_file_bytes must be at least {MIN_FILE_BYTES}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path: Path | str = MEMORY if str(path) == MEMORY else Path(path)
        # Plain strings, stat()ed on every put: pathlib's own cost would be most of a put's.
        self._file_names: tuple[str, ...] = ()
        self._folder = "."
        if isinstance(self.path, Path):
            self._file_names = tuple(f"{self.path}{suffix}" for suffix in ("", "-wal", "-shm"))
            self._folder = str(self.path.parent)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self.memory_max_messages = memory_max_messages
        self.memory_max_bytes = memory_max_bytes
        self.retry_s = retry_s
        self._synchronous: Synchronous = synchronous
        self._lock = threading.Lock()
        self._dropped: Counter[Importance] = Counter()
        self._over_bound_warned = False
        self._well_within = True
        # While the disk refuses writes: messages in memory (seq order), their ids, acks whose
        # DELETE failed (seq -> importance), drops not yet added to the file's totals.
        self._memory: dict[int, _Held] = {}
        self._memory_ids: dict[str, int] = {}
        self._memory_bytes = 0
        self._unsaved_acks: dict[int, Importance] = {}
        self._unsaved_drops: Counter[Importance] = Counter()
        self._refusal: _Refusal | None = None
        self._notices: deque[DiskNotice] = deque(maxlen=16)
        self._retry_at = 0.0
        self._read_warned = False
        self._wal_pages = 0  # wal_autocheckpoint as last set
        self._writable = True
        self._db: sqlite3.Connection | None = None
        self._page_size = 4096
        self._db = self._open(synchronous)
        self._last_seq = self._read_last_seq()

    # -- opening ---------------------------------------------------------------------------

    def _open(self, synchronous: Synchronous) -> sqlite3.Connection | None:
        if not isinstance(self.path, Path):
            return self._configured(_connect(MEMORY, synchronous))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                return self._configured(_connect(self.path, synchronous))
            except _Corrupt as error:
                # Unsent messages are worth less than a daemon that keeps publishing: keep the
                # file for a post-mortem (or a manual salvage) and start afresh.
                aside = _move_aside(self.path)
                log.error(
                    "outbox %s is corrupt (%s): moved it to %s and started a fresh outbox;"
                    " the messages in it were not sent",
                    self.path,
                    error,
                    aside,
                )
                return self._configured(_connect(self.path, synchronous))
        except sqlite3.OperationalError as error:
            # A folder in its place, or no folder: a setting to fix, not a disk to wait for.
            if self.path.is_dir() or not self.path.parent.is_dir():
                raise
            # The disk is full or read-only: start anyway, read what is there, keep new
            # messages in memory and try again later; the daemon must not die of its disk.
            self._writable = False
            self._start_refusal(error)
            return self._open_read_only()

    def _open_read_only(self) -> sqlite3.Connection | None:
        assert isinstance(self.path, Path)
        wal, shm = Path(f"{self.path}-wal"), Path(f"{self.path}-shm")
        if not self.path.is_file():
            return None
        # As in `doctor`: a WAL with frames is read through it (and its -shm) if it can be;
        # otherwise (no WAL, an empty one left by the failed open, or a -shm that cannot
        # grow) the main file alone, as immutable: complete unless the WAL had frames.
        wal_frames = _file_size(wal) > 0
        tries = ["mode=ro", "mode=ro&immutable=1"] if wal_frames and shm.exists() else []
        tries = tries or ["mode=ro&immutable=1"]
        for options in tries:
            try:
                uri = f"{self.path.absolute().as_uri()}?{options}"
                db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
                db.execute("SELECT COUNT(*) FROM totals").fetchone()
            except sqlite3.Error:
                continue
            self._seq_uncertain = wal_frames and "immutable" in options
            return db
        self._seq_uncertain = True
        return None

    _seq_uncertain = False

    def _configured(self, db: sqlite3.Connection) -> sqlite3.Connection:
        (self._page_size,) = db.execute("PRAGMA page_size").fetchone()
        self._wal_pages = 0
        return db

    def _read_last_seq(self) -> int:
        """The highest seq ever handed out, so that seqs of messages kept in memory follow."""
        last = 0
        if self._db is not None:
            try:
                row = self._db.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"
                ).fetchone()
                last = int(row[0]) if row else 0
            except sqlite3.Error:
                self._seq_uncertain = True
        if self._seq_uncertain:
            # A WAL this process cannot read may hold later seqs: jump far past them (seqs
            # are opaque; they only have to increase).
            last = max(last, int(time.time() * 1_000_000))
        return last

    def _reopen(self) -> bool:
        """Open the file for writing again (after a start on a full or read-only disk)."""
        assert isinstance(self.path, Path)
        try:
            db = self._configured(_connect(self.path, self._synchronous))
        except (sqlite3.Error, _Corrupt, OSError, RuntimeError):
            return False
        old, self._db, self._writable = self._db, db, True
        if old is not None:
            with suppress(sqlite3.Error):
                old.close()
        return True

    # -- writing ---------------------------------------------------------------------------

    def put(
        self,
        topic: str,
        payload: bytes,
        *,
        message_id: str,
        qos: int = 1,
        retain: bool = False,
        importance: Importance = Importance.REPORT,
        replace_key: str | None = None,
        created_wall: float | None = None,
    ) -> int:
        """Store a message (one transaction), enforce the bound, return its seq.

        A `message_id` already pending is a no-op that returns the pending message's seq (an
        id that was acknowledged and deleted is not remembered). With `replace_key`, pending
        messages with the same key are deleted first: for state topics, where only the newest
        value matters. A STATS or EVENT message may be dropped by the bound in this very call;
        the returned seq is then no longer pending.

        When the disk refuses the write (full, read-only, failing), the message is kept in
        memory (bounded, dropped in the same order) and written when the disk takes writes
        again; it is sent from memory meanwhile. Only bad arguments raise.
        """
        if not topic:
            raise ValueError("an outbox message needs a topic")
        if not message_id:
            raise ValueError("an outbox message needs a message_id")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        importance = Importance(importance)
        if replace_key is not None and importance is Importance.REPORT:
            raise ValueError("reports are never replaced: replace_key is for state messages")
        payload = bytes(payload)
        created = time.time() if created_wall is None else created_wall
        held = _Held(0, message_id, topic, payload, qos, retain, importance, replace_key, created)
        with self._lock:
            self._recover_if_due()
            if self._memory or not self._writable or self._db is None:
                return self._hold(held)
            try:
                return self._insert(held)
            except sqlite3.DatabaseError as error:
                if _is_programming_error(error):
                    raise
                # The WAL may be what fills the disk: fold it into the file, then try once more.
                self._checkpoint_truncate()
                try:
                    return self._insert(held)
                except sqlite3.DatabaseError as again:
                    if _is_programming_error(again):
                        raise
                    self._start_refusal(again)
                    return self._hold(held)

    def _insert(self, held: _Held) -> int:
        room = self._room()
        with self._transaction() as db:
            row = db.execute(
                "SELECT seq FROM messages WHERE message_id = ?", (held.message_id,)
            ).fetchone()
            if row is not None:
                return int(row[0])
            if held.replace_key is not None:
                db.execute("DELETE FROM messages WHERE replace_key = ?", (held.replace_key,))
            # The seq is ours, not AUTOINCREMENT's: messages kept in memory may have taken
            # (and the sender passed) seqs the file never saw.
            seq = self._last_seq + 1
            db.execute(
                "INSERT INTO messages (seq, message_id, topic, payload, size, qos, retain,"
                " importance, replace_key, created_wall)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    held.message_id,
                    held.topic,
                    held.payload,
                    len(held.payload),
                    held.qos,
                    int(held.retain),
                    int(held.importance),
                    held.replace_key,
                    held.created_wall,
                ),
            )
            drops, reports_over = self._enforce_bound(db, room)
        # Counted only once committed: a rolled-back drop did not happen.
        self._count_drops(drops)
        self._note_bound(reports_over)
        self._last_seq = seq
        return seq

    def _hold(self, held: _Held) -> int:
        """Keep a message in memory, after every message before it; drop by the same order."""
        if held.message_id in self._memory_ids:
            return self._memory_ids[held.message_id]
        if self._db is not None:
            with suppress(sqlite3.Error):
                row = self._db.execute(
                    "SELECT seq FROM messages WHERE message_id = ?", (held.message_id,)
                ).fetchone()
                if row is not None and int(row[0]) not in self._unsaved_acks:
                    return int(row[0])
        if held.replace_key is not None:
            for seq in [s for s, h in self._memory.items() if h.replace_key == held.replace_key]:
                self._forget(seq)
        self._last_seq += 1
        held.seq = self._last_seq
        self._memory[held.seq] = held
        self._memory_ids[held.message_id] = held.seq
        self._memory_bytes += len(held.payload)
        if self._refusal is not None:
            self._refusal.kept += 1
        drops: Counter[Importance] = Counter()
        while (
            len(self._memory) > self.memory_max_messages
            or self._memory_bytes > self.memory_max_bytes
        ):
            # Stats, then events, then (only when nothing else is left) the oldest report.
            victim = min(self._memory.values(), key=lambda h: (h.importance, h.seq))
            self._forget(victim.seq)
            drops[victim.importance] += 1
        if drops:
            self._unsaved_drops.update(drops)
            self._count_drops(drops)
            log.debug("outbox: the memory bound dropped %s", dict(drops))
        return held.seq

    def _forget(self, seq: int) -> _Held | None:
        held = self._memory.pop(seq, None)
        if held is not None:
            del self._memory_ids[held.message_id]
            self._memory_bytes -= len(held.payload)
        return held

    def _count_drops(self, drops: Counter[Importance]) -> None:
        self._dropped.update(drops)
        if self._refusal is not None:
            self._refusal.dropped.update(drops)

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
        total = disk.f_blocks * disk.f_frsize
        reserve = min(total // 16, MAX_RESERVE_BYTES)
        room = own + disk.f_bavail * disk.f_frsize - reserve
        return room if self.max_file_bytes is None else min(self.max_file_bytes, room)

    def _disk_has_room(self) -> bool:
        """The state disk has more than its reserve free (or cannot say)."""
        assert isinstance(self.path, Path)
        try:
            disk = os.statvfs(self.path.parent)
        except OSError:
            return True
        total = disk.f_blocks * disk.f_frsize
        return disk.f_bavail * disk.f_frsize > min(total // 16, MAX_RESERVE_BYTES)

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

    def mark_sent(self, seqs: Iterable[int], now_wall: float | None = None) -> None:
        """Count one publish attempt for each seq (unknown seqs are ignored)."""
        now = time.time() if now_wall is None else now_wall
        with self._lock:
            rows = []
            for seq in seqs:
                held = self._memory.get(int(seq))
                if held is not None:
                    held.attempts += 1
                    held.last_attempt_wall = now
                else:
                    rows.append((now, int(seq)))
            if not rows or self._db is None or not self._writable:
                return
            # Only a counter: a disk that refuses it costs nothing worth keeping.
            with suppress(sqlite3.OperationalError), self._transaction() as db:
                db.executemany(
                    "UPDATE messages SET attempts = attempts + 1, last_attempt_wall = ?"
                    " WHERE seq = ?",
                    rows,
                )

    def ack(self, seq: int) -> None:
        """The broker has it: delete it. An unknown (or already acknowledged) seq is fine."""
        self.ack_many((seq,))

    def ack_many(self, seqs: Iterable[int]) -> None:
        with self._lock:
            rows = [(int(seq),) for seq in seqs if self._forget(int(seq)) is None]
            if not rows or self._db is None:
                return
            try:
                if not self._writable:
                    raise sqlite3.OperationalError("attempt to write a readonly database")
                with self._transaction() as db:
                    db.executemany("DELETE FROM messages WHERE seq = ?", rows)
            except sqlite3.DatabaseError as error:
                # Delivered, but still in the file: hidden from pending() and counts, deleted
                # when the disk takes writes again.
                self._unsaved_acks.update(self._importance_of([row[0] for row in rows]))
                self._start_refusal(error)
                return
            if self._over_bound_warned:
                # Back within the bound re-arms the warning for the next crossing.
                with suppress(sqlite3.Error):
                    self._note_bound(self._reports_over_bound())
            self._recover_if_due()

    def _importance_of(self, seqs: list[int]) -> dict[int, Importance]:
        assert self._db is not None
        marks = ",".join("?" * len(seqs))
        try:
            rows = self._db.execute(
                f"SELECT seq, importance FROM messages WHERE seq IN ({marks})", seqs
            ).fetchall()
        except sqlite3.Error:
            return {}
        return {int(seq): Importance(importance) for seq, importance in rows}

    # -- when the disk refuses -------------------------------------------------------------

    def _start_refusal(self, error: BaseException) -> None:
        if self._refusal is not None:
            return
        self._refusal = _Refusal(str(error), time.time(), time.monotonic())
        self._retry_at = time.monotonic() + self.retry_s
        self._notices.append(self._refusal.notice(refused=True))
        log.warning(
            "outbox %s: the state disk refuses writes (%s); keeping messages in memory (up to"
            " %d messages, %.1f MB) and sending them from there, retrying the disk every %g s",
            self.path,
            error,
            self.memory_max_messages,
            self.memory_max_bytes / 1024**2,
            self.retry_s,
        )

    def retry_if_due(self) -> None:
        """Try the disk again if it refused writes and `retry_s` has passed (cheap otherwise)."""
        if self._refusal is None and not self._memory:
            return
        with self._lock:
            self._recover_if_due()

    def _recover_if_due(self) -> None:
        if self._refusal is None and not self._memory and not self._unsaved_acks:
            return
        now = time.monotonic()
        if now < self._retry_at:
            return
        self._retry_at = now + self.retry_s
        if not isinstance(self.path, Path):
            return
        if (not self._writable or self._db is None) and not self._reopen():
            return
        self._checkpoint_truncate()
        if not self._flush_memory():
            return
        if self._refusal is not None and not self._disk_has_room():
            # The writes went through on space freed inside the file, but the disk is still
            # full: not back yet (else each retry would say "back" and the next put "refused").
            return
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            return
        notice = refusal.notice(refused=False)
        self._notices.append(notice)
        dropped = notice.dropped
        log.warning(
            "outbox %s: the state disk takes writes again after %.0f s; %d messages were kept in"
            " memory meanwhile, %d dropped (stats %d, events %d, reports %d)",
            self.path,
            notice.duration_s,
            notice.kept_in_memory,
            sum(dropped.values()),
            dropped[Importance.STATS],
            dropped[Importance.EVENT],
            dropped[Importance.REPORT],
        )

    def _flush_memory(self) -> bool:
        """Write what memory holds into the file, oldest first, a chunk per transaction, and
        the deletes the disk refused; True once all of it is on disk."""
        while True:
            chunk = list(self._memory.values())[:FLUSH_CHUNK]
            room = self._room()
            try:
                with self._transaction() as db:
                    if self._unsaved_acks:
                        db.executemany(
                            "DELETE FROM messages WHERE seq = ?",
                            [(seq,) for seq in self._unsaved_acks],
                        )
                    for held in chunk:
                        self._insert_held(db, held)
                    # Always one write, so that an empty flush still proves the disk works.
                    for importance in Importance:
                        db.execute(
                            "UPDATE totals SET dropped = dropped + ? WHERE importance = ?",
                            (self._unsaved_drops[importance], int(importance)),
                        )
                    drops, reports_over = self._enforce_bound(db, room)
            except sqlite3.DatabaseError:
                return False
            self._unsaved_acks.clear()
            self._unsaved_drops.clear()
            for held in chunk:
                self._forget(held.seq)
            self._count_drops(drops)
            self._note_bound(reports_over)
            if not self._memory:
                return True

    def _insert_held(self, db: sqlite3.Connection, held: _Held) -> None:
        # Its own seq, already handed to the sender: an ack of it must find it.
        # (An IntegrityError: the same message_id is pending in the file already.)
        with suppress(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO messages (seq, message_id, topic, payload, size, qos, retain,"
                " importance, replace_key, created_wall, attempts, last_attempt_wall)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    held.seq,
                    held.message_id,
                    held.topic,
                    held.payload,
                    len(held.payload),
                    held.qos,
                    int(held.retain),
                    int(held.importance),
                    held.replace_key,
                    held.created_wall,
                    held.attempts,
                    held.last_attempt_wall,
                ),
            )

    def take_disk_notices(self) -> list[DiskNotice]:
        """What changed since the last call: the disk started refusing writes, or takes them
        again (with what was kept in memory and dropped meanwhile)."""
        if not self._notices:
            return []
        with self._lock:
            notices = list(self._notices)
            self._notices.clear()
        return notices

    def disk_refusal(self) -> DiskNotice | None:
        """The stretch of refused writes going on now, so far; None when the disk is fine."""
        with self._lock:
            return None if self._refusal is None else self._refusal.notice(refused=True)

    # -- reading ---------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxMessage]:
        """Up to `limit` messages with seq > `after_seq`, oldest first.

        The sender keeps its own place with `after_seq` while connected and starts again from
        0 after a reconnect: anything not acknowledged is then sent again, in order. Messages
        kept in memory come after those in the file (their seqs are higher).
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        with self._lock:
            found: list[OutboxMessage] = []
            if self._db is not None:
                rows = self._read(
                    f"SELECT {_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit + len(self._unsaved_acks)),
                )
                found = [_message(row) for row in rows if row[0] not in self._unsaved_acks]
            for held in self._memory.values():
                if len(found) >= limit:
                    break
                if held.seq > after_seq:
                    found.append(held.message())
        return found[:limit]

    def _read(self, query: str, parameters: tuple = ()) -> list[tuple]:
        """Rows of a query; none (and one warning) when the file cannot be read."""
        assert self._db is not None
        try:
            return self._db.execute(query, parameters).fetchall()
        except sqlite3.Error as error:
            if not self._read_warned:
                self._read_warned = True
                log.warning("outbox %s cannot be read (%s)", self.path, error)
            return []

    def count(self) -> int:
        return sum(self.counts_by_importance().values())

    def size_bytes(self) -> int:
        """The sum of the pending payloads' lengths (the files take more: `file_bytes`)."""
        with self._lock:
            return sum(self._totals()[1].values())

    def file_bytes(self) -> int:
        """What the outbox takes on disk now: the database, its WAL and shared-memory file."""
        return sum(_file_size(name) for name in self._file_names)

    def counts_by_importance(self) -> dict[Importance, int]:
        with self._lock:
            return self._totals()[0]

    def _totals(self) -> tuple[dict[Importance, int], dict[Importance, int]]:
        """Pending messages and payload bytes by importance, in the file and in memory."""
        counts: Counter[Importance] = Counter()
        sizes: Counter[Importance] = Counter()
        if self._db is not None:
            for importance, pending, size in self._read(
                "SELECT importance, pending, bytes FROM totals"
            ):
                counts[Importance(importance)] += int(pending)
                sizes[Importance(importance)] += int(size)
            for importance in self._unsaved_acks.values():
                counts[importance] -= 1
        for held in self._memory.values():
            counts[held.importance] += 1
            sizes[held.importance] += len(held.payload)
        return (
            {importance: max(0, counts[importance]) for importance in Importance},
            {importance: max(0, sizes[importance]) for importance in Importance},
        )

    def dropped(self) -> dict[Importance, int]:
        """Messages dropped by the bound since this Outbox was opened (`stats()` has totals)."""
        with self._lock:
            return {importance: self._dropped[importance] for importance in Importance}

    def oldest_age_s(self, now_wall: float) -> float | None:
        """Seconds since the oldest pending message was put; None when nothing is pending."""
        with self._lock:
            return self._oldest_age_s(now_wall)

    def _oldest_age_s(self, now_wall: float) -> float | None:
        oldest = None
        if self._db is not None:
            rows = self._read("SELECT created_wall FROM messages ORDER BY seq LIMIT 1")
            oldest = rows[0][0] if rows else None
        if oldest is None and self._memory:
            oldest = next(iter(self._memory.values())).created_wall
        # A wall clock set back (NTP's first sync on a Pi without an RTC) must not give a
        # negative age.
        return None if oldest is None else max(0.0, now_wall - oldest)

    def stats(self, now_wall: float | None = None) -> OutboxStats:
        now = time.time() if now_wall is None else now_wall
        with self._lock:
            self._recover_if_due()
            counts, sizes = self._totals()
            dropped: Counter[Importance] = Counter(self._unsaved_drops)
            if self._db is not None:
                for importance, n in self._read("SELECT importance, dropped FROM totals"):
                    dropped[Importance(importance)] += int(n)
            oldest = self._oldest_age_s(now)
            since_open = {importance: self._dropped[importance] for importance in Importance}
            in_memory = len(self._memory)
            refused = self._refusal is not None
        return OutboxStats(
            pending=sum(counts.values()),
            size_bytes=sum(sizes.values()),
            by_importance=counts,
            dropped_total={importance: dropped[importance] for importance in Importance},
            dropped_since_open=since_open,
            oldest_age_s=oldest,
            in_memory=in_memory,
            disk_refused=refused,
            file_bytes=self.file_bytes(),
        )

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; the last connection's close checkpoints the WAL (fsynced). What
        memory holds is written first if the disk takes it, else it is lost, with a warning."""
        with self._lock:
            if self._memory or self._unsaved_acks:
                self._retry_at = 0.0
                self._recover_if_due()
            if self._memory:
                log.warning(
                    "outbox %s: the state disk still refuses writes; %d messages kept in memory"
                    " are lost with this stop",
                    self.path,
                    len(self._memory),
                )
            if self._db is not None:
                with suppress(sqlite3.Error):
                    self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, max_messages={self.max_messages})"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; the caller holds the lock."""
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise


def _is_programming_error(error: sqlite3.DatabaseError) -> bool:
    """A bug in the caller (a value SQLite cannot bind), not the disk: that one raises."""
    return isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError)


def _file_size(path: Path | str) -> int:
    """What a file takes on disk (its blocks: a sparse or preallocated file differs from its
    length); 0 when it is not there."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def _connect(path: Path | str, synchronous: Synchronous) -> sqlite3.Connection:
    """Open, configure and check the database, creating the schema if it is new.

    Raises _Corrupt when the file is not a usable SQLite database.
    """
    # isolation_level=None: transactions are the explicit BEGIN/COMMIT in Outbox._transaction,
    # not the sqlite3 module's implicit ones.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Reading the mode is the first read of the file: a garbage file fails here.
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if path != MEMORY and mode != "wal":
            log.warning("outbox %s: SQLite refused WAL mode (journal_mode=%s)", path, mode)
        # In WAL mode, NORMAL writes each commit to the WAL without an fsync; the WAL is
        # fsynced at each checkpoint (every ~4 MB of WAL) and on a clean close.
        # - It survives the process crashing, being killed (SIGKILL, the OOM killer) or
        #   restarted: a commit is in the kernel's page cache, which outlives the process.
        # - Power loss or a kernel panic may roll back the last commits, those the kernel had
        #   not written out yet (seconds; up to ~30 s with Linux's default writeback). The
        #   file stays consistent (WAL frames are checksummed; recovery stops at the first bad
        #   one), so what is lost is a suffix: a few unsent messages, or acks undone, which
        #   re-sends messages that consumers drop by message_id.
        # FULL fsyncs the WAL on every put, mark_sent and ack: on an SD card that is
        # milliseconds per commit and far more while the card erases, paid on the vision
        # thread, and wear on the card. It would protect seconds of data against a power cut
        # that destroys the audience window being counted in memory anyway, so NORMAL is the
        # default; FULL is there for a site that wants it (scripts/bench_outbox.py measures
        # both).
        db.execute(f"PRAGMA synchronous = {synchronous}")
        # quick_check reads every page once (O(size), at start only): a file damaged inside,
        # not just in its header, is found now rather than by a put in the vision loop.
        problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise _Corrupt("; ".join(problems[:3]))
        _create_schema(db, path)
    except sqlite3.DatabaseError as error:
        db.close()
        if _is_corruption(error):
            raise _Corrupt(str(error)) from error
        raise
    except BaseException:
        db.close()
        raise
    return db


def _create_schema(db: sqlite3.Connection, path: Path | str) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"outbox {path} has schema version {version}, newer than this edge-agent's"
            f" {SCHEMA_VERSION}: upgrade edge-agent, or move the file away to start afresh"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    # OperationalError is a DatabaseError too (locked, unable to open, disk full): those are
    # not the file's fault and must not move it aside.
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return False
    return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _move_aside(path: Path) -> Path:
    """Rename `path` to `<name>.corrupt-<UTC timestamp>`, with its -wal and -shm files."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    # SQLite usually checkpoints or deletes the WAL when the failed connection closes. One left
    # behind belongs to the corrupt file: in place, SQLite would replay it into the fresh
    # database; moved along under the matching name, the pair still opens together.
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside


def _message(row: tuple) -> OutboxMessage:
    seq, message_id, topic, payload, qos, retain, importance, created, attempts, last = row
    return OutboxMessage(
        seq=seq,
        message_id=message_id,
        topic=topic,
        payload=bytes(payload),
        qos=qos,
        retain=bool(retain),
        importance=Importance(importance),
        created_wall=created,
        attempts=attempts,
        last_attempt_wall=last,
    )
