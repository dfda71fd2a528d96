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
- The store is bounded (`max_messages`, `max_bytes`). Over the bound the oldest STATS message
  goes first, then the oldest EVENT; REPORTs are never dropped, even over the bound.
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
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Literal

log = logging.getLogger(__name__)

MEMORY = ":memory:"  # an in-memory outbox, for tests only: nothing survives
SCHEMA_VERSION = 1  # kept in PRAGMA user_version
BUSY_TIMEOUT_MS = 5_000  # only another process (an operator's sqlite3 shell) can hold the lock

Synchronous = Literal["NORMAL", "FULL"]


class Importance(IntEnum):
    """What the bound may drop, lowest first."""

    STATS = 0  # periodic health and counters: dropped when full, oldest first
    EVENT = 1  # errors, decisions: dropped only after all stats are gone
    REPORT = 2  # audience reports, play events: never dropped


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


class Outbox:
    """A bounded, ordered, crash-safe queue of MQTT messages in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_messages: int = 100_000,
        max_bytes: int = 200 * 1024 * 1024,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"outbox bounds must be positive: {max_messages=}, {max_bytes=}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path: Path | str = MEMORY if str(path) == MEMORY else Path(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._dropped: Counter[Importance] = Counter()
        self._over_bound_warned = False
        self._db = self._open(synchronous)

    # -- opening ---------------------------------------------------------------------------

    def _open(self, synchronous: Synchronous) -> sqlite3.Connection:
        if not isinstance(self.path, Path):
            return _connect(MEMORY, synchronous)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _connect(self.path, synchronous)
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
            return _connect(self.path, synchronous)

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
        with self._lock:
            with self._transaction() as db:
                row = db.execute(
                    "SELECT seq FROM messages WHERE message_id = ?", (message_id,)
                ).fetchone()
                if row is not None:
                    return int(row[0])
                if replace_key is not None:
                    db.execute("DELETE FROM messages WHERE replace_key = ?", (replace_key,))
                # fetchall, not fetchone: RETURNING statements are stepped to the end.
                ((seq,),) = db.execute(
                    "INSERT INTO messages (message_id, topic, payload, size, qos, retain,"
                    " importance, replace_key, created_wall)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                    (
                        message_id,
                        topic,
                        payload,
                        len(payload),
                        qos,
                        int(retain),
                        int(importance),
                        replace_key,
                        created,
                    ),
                ).fetchall()
                drops, reports_over = self._enforce_bound(db)
            # Counted only once committed: a rolled-back drop did not happen.
            self._dropped.update(drops)
            self._note_bound(reports_over)
        return int(seq)

    def _enforce_bound(self, db: sqlite3.Connection) -> tuple[Counter[Importance], int | None]:
        """Drop stats, then events, oldest first, until within the bound.

        Returns what was dropped, and how many reports are waiting if the outbox is still over
        its bound (then only reports are left), else None.
        """
        pending, size = db.execute("SELECT SUM(pending), SUM(bytes) FROM totals").fetchone()
        drops: Counter[Importance] = Counter()
        for importance in (Importance.STATS, Importance.EVENT):
            while pending > self.max_messages or size > self.max_bytes:
                deleted = db.execute(
                    "DELETE FROM messages WHERE seq = (SELECT seq FROM messages"
                    " WHERE importance = ? ORDER BY seq LIMIT 1) RETURNING size",
                    (int(importance),),
                ).fetchall()
                if not deleted:
                    break
                pending -= 1
                size -= deleted[0][0]
                drops[importance] += 1
            if drops[importance]:
                db.execute(
                    "UPDATE totals SET dropped = dropped + ? WHERE importance = ?",
                    (drops[importance], int(importance)),
                )
        over = pending > self.max_messages or size > self.max_bytes
        return drops, (pending if over else None)

    def _reports_over_bound(self) -> int | None:
        """How many messages are pending if over the bound (then all reports), else None."""
        pending, size = self._db.execute("SELECT SUM(pending), SUM(bytes) FROM totals").fetchone()
        over = pending > self.max_messages or size > self.max_bytes
        return pending if over else None

    def _note_bound(self, reports_over: int | None) -> None:
        """Warn once each time the outbox crosses its bound with only reports left."""
        if reports_over is None:
            self._over_bound_warned = False
        elif not self._over_bound_warned:
            self._over_bound_warned = True
            log.warning(
                "outbox over its bound with %d reports waiting: the broker has been unreachable"
                " for a long time (%s; bound %d messages, %d bytes; reports are kept, never"
                " dropped)",
                reports_over,
                self.path,
                self.max_messages,
                self.max_bytes,
            )

    def mark_sent(self, seqs: Iterable[int], now_wall: float | None = None) -> None:
        """Count one publish attempt for each seq (unknown seqs are ignored)."""
        now = time.time() if now_wall is None else now_wall
        rows = [(now, int(seq)) for seq in seqs]
        if not rows:
            return
        with self._lock, self._transaction() as db:
            db.executemany(
                "UPDATE messages SET attempts = attempts + 1, last_attempt_wall = ? WHERE seq = ?",
                rows,
            )

    def ack(self, seq: int) -> None:
        """The broker has it: delete it. An unknown (or already acknowledged) seq is fine."""
        self.ack_many((seq,))

    def ack_many(self, seqs: Iterable[int]) -> None:
        rows = [(int(seq),) for seq in seqs]
        if not rows:
            return
        with self._lock:
            with self._transaction() as db:
                db.executemany("DELETE FROM messages WHERE seq = ?", rows)
            if self._over_bound_warned:
                # Back within the bound re-arms the warning for the next crossing.
                self._note_bound(self._reports_over_bound())

    # -- reading ---------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxMessage]:
        """Up to `limit` messages with seq > `after_seq`, oldest first.

        The sender keeps its own place with `after_seq` while connected and starts again from
        0 after a reconnect: anything not acknowledged is then sent again, in order.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [_message(row) for row in rows]

    def count(self) -> int:
        return sum(self.counts_by_importance().values())

    def size_bytes(self) -> int:
        """The sum of the pending payloads' lengths (the file itself is larger)."""
        with self._lock:
            (size,) = self._db.execute("SELECT SUM(bytes) FROM totals").fetchone()
        return int(size)

    def counts_by_importance(self) -> dict[Importance, int]:
        with self._lock:
            rows = self._db.execute("SELECT importance, pending FROM totals").fetchall()
        return {Importance(importance): int(n) for importance, n in rows}

    def dropped(self) -> dict[Importance, int]:
        """Messages dropped by the bound since this Outbox was opened (`stats()` has totals)."""
        with self._lock:
            return {importance: self._dropped[importance] for importance in Importance}

    def oldest_age_s(self, now_wall: float) -> float | None:
        """Seconds since the oldest pending message was put; None when nothing is pending."""
        with self._lock:
            return self._oldest_age_s(now_wall)

    def _oldest_age_s(self, now_wall: float) -> float | None:
        row = self._db.execute("SELECT created_wall FROM messages ORDER BY seq LIMIT 1").fetchone()
        # A wall clock set back (NTP's first sync on a Pi without an RTC) must not give a
        # negative age.
        return None if row is None else max(0.0, now_wall - row[0])

    def stats(self, now_wall: float | None = None) -> OutboxStats:
        now = time.time() if now_wall is None else now_wall
        with self._lock:
            rows = self._db.execute("SELECT importance, pending, bytes, dropped FROM totals")
            rows = rows.fetchall()
            oldest = self._oldest_age_s(now)
            since_open = {importance: self._dropped[importance] for importance in Importance}
        return OutboxStats(
            pending=sum(row[1] for row in rows),
            size_bytes=sum(row[2] for row in rows),
            by_importance={Importance(row[0]): int(row[1]) for row in rows},
            dropped_total={Importance(row[0]): int(row[3]) for row in rows},
            dropped_since_open=since_open,
            oldest_age_s=oldest,
        )

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; the last connection's close checkpoints the WAL (fsynced)."""
        with self._lock:
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
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


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
