"""The outbox's SQLite file: its schema, opening and checking it, and its rows as messages.

One table of messages and one of running totals per importance, kept by triggers (see
SCHEMA). `connect` opens a file in WAL mode, checks it and creates the schema; a file that is not
a usable database raises `Corrupt`, and `move_aside` keeps it for a post-mortem. The `Outbox`
(outbox.py) owns the connection and every transaction on it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Literal

# The outbox's one logger, whichever of its modules speaks: its lines read as they always did.
log = logging.getLogger("edge_agent.telemetry.outbox")

MEMORY = ":memory:"  # an in-memory outbox, for tests only: nothing survives
SCHEMA_VERSION = 1  # kept in PRAGMA user_version
BUSY_TIMEOUT_MS = 5_000  # only another process (an operator's sqlite3 shell) can hold the lock

Synchronous = Literal["NORMAL", "FULL"]


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


class Corrupt(Exception):
    """The file is not a usable SQLite database."""


# Statements, not one script: executescript() would commit the transaction they run in.
SCHEMA = (
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

COLUMNS = (
    "seq, message_id, topic, payload, qos, retain, importance, created_wall, attempts,"
    " last_attempt_wall"
)


def is_programming_error(error: sqlite3.DatabaseError) -> bool:
    """A bug in the caller (a value SQLite cannot bind), not the disk: that one raises."""
    return isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError)


def file_size(path: Path | str) -> int:
    """What a file takes on disk (its blocks: a sparse or preallocated file differs from its
    length); 0 when it is not there."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def connect(path: Path | str, synchronous: Synchronous) -> sqlite3.Connection:
    """Open, configure and check the database, creating the schema if it is new.

    Raises Corrupt when the file is not a usable SQLite database.
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
            raise Corrupt("; ".join(problems[:3]))
        create_schema(db, path)
    except sqlite3.DatabaseError as error:
        db.close()
        if is_corruption(error):
            raise Corrupt(str(error)) from error
        raise
    except BaseException:
        db.close()
        raise
    return db


def create_schema(db: sqlite3.Connection, path: Path | str) -> None:
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
        for statement in SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def is_corruption(error: sqlite3.DatabaseError) -> bool:
    # OperationalError is a DatabaseError too (locked, unable to open, disk full): those are
    # not the file's fault and must not move it aside.
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return False
    return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def move_aside(path: Path) -> Path:
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


def message_from_row(row: tuple) -> OutboxMessage:
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
