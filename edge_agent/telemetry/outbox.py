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
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edge_agent.telemetry.outbox_bound import MIN_FILE_BYTES, FileBound
from edge_agent.telemetry.outbox_memory import (
    MEMORY_MAX_BYTES,
    MEMORY_MAX_MESSAGES,
    RETRY_S,
    DiskNotice,
    DiskRefusal,
    Held,
    Refusal,
)
from edge_agent.telemetry.outbox_store import (
    COLUMNS,
    MEMORY,
    Corrupt,
    Importance,
    OutboxMessage,
    Synchronous,
    connect,
    file_size,
    is_programming_error,
    message_from_row,
    move_aside,
)

# What callers import from here; the parts live in outbox_store (the SQLite file),
# outbox_bound (the bound and its drop order) and outbox_memory (a disk that refuses writes).
__all__ = [
    "MEMORY",
    "MIN_FILE_BYTES",
    "DiskNotice",
    "Importance",
    "Outbox",
    "OutboxMessage",
    "OutboxStats",
    "Synchronous",
]

log = logging.getLogger(__name__)


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


class Outbox(DiskRefusal, FileBound):
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
        self._memory: dict[int, Held] = {}
        self._memory_ids: dict[str, int] = {}
        self._memory_bytes = 0
        self._unsaved_acks: dict[int, Importance] = {}
        self._unsaved_drops: Counter[Importance] = Counter()
        self._refusal: Refusal | None = None
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
            return self._configured(connect(MEMORY, synchronous))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                return self._configured(connect(self.path, synchronous))
            except Corrupt as error:
                # Unsent messages are worth less than a daemon that keeps publishing: keep the
                # file for a post-mortem (or a manual salvage) and start afresh.
                aside = move_aside(self.path)
                log.error(
                    "outbox %s is corrupt (%s): moved it to %s and started a fresh outbox;"
                    " the messages in it were not sent",
                    self.path,
                    error,
                    aside,
                )
                return self._configured(connect(self.path, synchronous))
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
        wal_frames = file_size(wal) > 0
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
            db = self._configured(connect(self.path, self._synchronous))
        except (sqlite3.Error, Corrupt, OSError, RuntimeError):
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
        held = Held(0, message_id, topic, payload, qos, retain, importance, replace_key, created)
        with self._lock:
            self._recover_if_due()
            if self._memory or not self._writable or self._db is None:
                return self._hold(held)
            try:
                return self._insert(held)
            except sqlite3.DatabaseError as error:
                if is_programming_error(error):
                    raise
                # The WAL may be what fills the disk: fold it into the file, then try once more.
                self._checkpoint_truncate()
                try:
                    return self._insert(held)
                except sqlite3.DatabaseError as again:
                    if is_programming_error(again):
                        raise
                    self._start_refusal(again)
                    return self._hold(held)

    def _insert(self, held: Held) -> int:
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
                    f"SELECT {COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit + len(self._unsaved_acks)),
                )
                found = [message_from_row(row) for row in rows if row[0] not in self._unsaved_acks]
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
        return sum(file_size(name) for name in self._file_names)

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
