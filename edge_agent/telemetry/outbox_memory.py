"""When the state disk refuses the outbox's writes: messages wait in memory, and come back.

The disk may refuse a write (full, read-only, failing): `put` then keeps the message in memory
(bounded, dropped in the bound's order, the oldest report only when nothing else is left),
`pending` hands it to the sender from there, and every `retry_s` the disk is tried again; once
it takes writes, memory is written to the file in order, with the seqs already handed out, and
the deletes the disk refused are done. `take_disk_notices` says when the disk started refusing
and when it is back, with what was kept and dropped meanwhile.

`DiskRefusal` is a part of `Outbox` (outbox.py): it works on the Outbox's connection and state,
under its lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.telemetry.outbox_store import Importance, OutboxMessage

# The outbox's one logger, whichever of its modules speaks: its lines read as they always did.
log = logging.getLogger("edge_agent.telemetry.outbox")

# While the state disk refuses writes, messages wait in memory up to these bounds.
MEMORY_MAX_MESSAGES = 10_000
MEMORY_MAX_BYTES = 16 * 1024 * 1024
RETRY_S = 5.0  # how often a refusing disk is tried again
FLUSH_CHUNK = 200  # messages written from memory per transaction when the disk is back


@dataclass(frozen=True, slots=True)
class DiskNotice:
    """The state disk started refusing the outbox's writes (`refused`), or takes them again."""

    refused: bool
    error: str  # what SQLite said when the disk first refused
    since_wall: float  # when it first refused
    duration_s: float  # so far, or in all once it is back
    kept_in_memory: int  # messages kept in memory meanwhile (sent from there, or saved later)
    dropped: dict[Importance, int]  # meanwhile, by the memory bound or the file bound


@dataclass(slots=True)
class Held:
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
class Refusal:
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


class DiskRefusal:
    """The Outbox's memory for messages the disk refuses, and its way back to the disk."""

    path: Path | str
    memory_max_messages: int
    memory_max_bytes: int
    retry_s: float
    _lock: threading.Lock
    _db: sqlite3.Connection | None
    _writable: bool
    _last_seq: int
    _dropped: Counter[Importance]
    _memory: dict[int, Held]
    _memory_ids: dict[str, int]
    _memory_bytes: int
    _unsaved_acks: dict[int, Importance]
    _unsaved_drops: Counter[Importance]
    _refusal: Refusal | None
    _notices: deque[DiskNotice]
    _retry_at: float

    # The rest of the Outbox, for type checkers only: at run time the Outbox's own methods
    # (or the other part's) answer, never a stub here.
    if TYPE_CHECKING:

        def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
            raise NotImplementedError

        def _room(self) -> int | None:
            raise NotImplementedError

        def _disk_has_room(self) -> bool:
            raise NotImplementedError

        def _checkpoint_truncate(self) -> None:
            raise NotImplementedError

        def _enforce_bound(
            self, db: sqlite3.Connection, room: int | None
        ) -> tuple[Counter[Importance], int | None]:
            raise NotImplementedError

        def _note_bound(self, reports_over: int | None) -> None:
            raise NotImplementedError

        def _reopen(self) -> bool:
            raise NotImplementedError

    def _hold(self, held: Held) -> int:
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

    def _forget(self, seq: int) -> Held | None:
        held = self._memory.pop(seq, None)
        if held is not None:
            del self._memory_ids[held.message_id]
            self._memory_bytes -= len(held.payload)
        return held

    def _count_drops(self, drops: Counter[Importance]) -> None:
        self._dropped.update(drops)
        if self._refusal is not None:
            self._refusal.dropped.update(drops)

    # -- when the disk refuses -------------------------------------------------------------

    def _start_refusal(self, error: BaseException) -> None:
        if self._refusal is not None:
            return
        self._refusal = Refusal(str(error), time.time(), time.monotonic())
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

    def _insert_held(self, db: sqlite3.Connection, held: Held) -> None:
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
