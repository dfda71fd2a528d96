"""The durable outbox, on real SQLite files: order, restarts, crashes, the bound, threads."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.telemetry.outbox import Importance, Outbox, OutboxMessage
from tests.support.paths import REPO

S, E, R = Importance.STATS, Importance.EVENT, Importance.REPORT
OVER_BOUND = "outbox over its bound with"


def put(outbox: Outbox, message_id: str, importance: Importance = R, size: int = 0) -> int:
    payload = json.dumps({"id": message_id}).encode().ljust(size, b" ")
    return outbox.put(
        f"edge/test/{importance.name.lower()}",
        payload,
        message_id=message_id,
        importance=importance,
    )


def ids(messages: list[OutboxMessage]) -> list[str]:
    return [m.message_id for m in messages]


def over_bound_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith(OVER_BOUND)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.db"


def test_pending_is_oldest_first_and_ack_removes(path: Path) -> None:
    with Outbox(path) as outbox:
        seqs = [put(outbox, f"m{i}") for i in range(5)]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 5
        assert ids(outbox.pending()) == ["m0", "m1", "m2", "m3", "m4"]
        assert [m.seq for m in outbox.pending()] == seqs

        outbox.ack(seqs[1])
        outbox.ack_many([seqs[3], seqs[0]])
        assert ids(outbox.pending()) == ["m2", "m4"]
        assert outbox.count() == 2

        outbox.ack(seqs[1])  # again
        outbox.ack(10_000)  # never existed
        outbox.ack_many([])
        assert ids(outbox.pending()) == ["m2", "m4"]


def test_pending_pages_with_limit_and_after_seq(path: Path) -> None:
    with Outbox(path) as outbox:
        for i in range(7):
            put(outbox, f"m{i}")
        first = outbox.pending(limit=3)
        assert ids(first) == ["m0", "m1", "m2"]
        second = outbox.pending(limit=3, after_seq=first[-1].seq)
        assert ids(second) == ["m3", "m4", "m5"]
        assert ids(outbox.pending(limit=3, after_seq=second[-1].seq)) == ["m6"]
        with pytest.raises(ValueError):
            outbox.pending(limit=0)


def test_message_round_trips_every_field(path: Path) -> None:
    with Outbox(path) as outbox:
        seq = outbox.put(
            "edge/shop-1/status",
            b"\x00binary\xff",
            message_id="abc",
            qos=0,
            retain=True,
            importance=Importance.EVENT,
            created_wall=1_700_000_000.5,
        )
        (message,) = outbox.pending()
    assert message == OutboxMessage(
        seq=seq,
        message_id="abc",
        topic="edge/shop-1/status",
        payload=b"\x00binary\xff",
        qos=0,
        retain=True,
        importance=Importance.EVENT,
        created_wall=1_700_000_000.5,
        attempts=0,
        last_attempt_wall=None,
    )


def test_mark_sent_counts_attempts_and_a_reconnect_resends_in_order(path: Path) -> None:
    with Outbox(path) as outbox:
        for i in range(4):
            put(outbox, f"m{i}")
        batch = outbox.pending()
        outbox.mark_sent([m.seq for m in batch], now_wall=123.0)
        outbox.ack(batch[0].seq)  # only the first PUBACK arrived before the connection dropped

        resend = outbox.pending()  # after the reconnect: from the start again
        assert ids(resend) == ["m1", "m2", "m3"]
        assert all(m.attempts == 1 and m.last_attempt_wall == 123.0 for m in resend)
        outbox.mark_sent([m.seq for m in resend])
        assert [m.attempts for m in outbox.pending()] == [2, 2, 2]


def test_everything_survives_a_restart_and_seqs_keep_increasing(path: Path) -> None:
    with Outbox(path) as outbox:
        for i in range(1_000):
            outbox.put(f"edge/t/{i % 3}", f'{{"n": {i}}}'.encode(), message_id=f"id-{i}")
        before = outbox.pending(limit=2_000)
    with Outbox(path) as outbox:
        after = outbox.pending(limit=2_000)
        assert after == before
        assert ids(after) == [f"id-{i}" for i in range(1_000)]
        assert put(outbox, "later") > before[-1].seq
        # Even with nothing pending, a seq is never reused (AUTOINCREMENT, not max(rowid) + 1).
        last = outbox.pending(limit=2_000)[-1].seq
        outbox.ack_many(m.seq for m in outbox.pending(limit=2_000))
        assert outbox.count() == 0
    with Outbox(path) as outbox:
        assert put(outbox, "after-empty") > last


def test_a_process_that_exits_without_closing_loses_nothing(path: Path) -> None:
    code = f"""
import os
from edge_agent.telemetry.outbox import Outbox
outbox = Outbox({str(path)!r})
for i in range(500):
    outbox.put("edge/t", b"x" * 100, message_id=f"crash-{{i}}")
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
    with Outbox(path) as outbox:
        assert ids(outbox.pending(limit=1_000)) == [f"crash-{i}" for i in range(500)]


def test_a_process_killed_mid_stream_keeps_every_put_that_returned(path: Path) -> None:
    # The child reports each seq after put() returned; SIGKILL lands between or inside puts.
    code = f"""
import sys
from edge_agent.telemetry.outbox import Outbox
outbox = Outbox({str(path)!r})
for i in range(1_000_000):
    seq = outbox.put("edge/t", b"y" * 300, message_id=f"kill-{{i}}")
    print(seq, flush=True)
"""
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = []
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    assert len(acknowledged) == 300
    with Outbox(path) as outbox:
        stored = outbox.pending(limit=1_000_000)
    assert not list(path.parent.glob("*.corrupt-*"))
    seqs = [m.seq for m in stored]
    assert seqs[: len(acknowledged)] == acknowledged
    assert ids(stored) == [f"kill-{i}" for i in range(len(stored))]


def test_a_duplicate_message_id_is_a_no_op(path: Path) -> None:
    with Outbox(path) as outbox:
        first = outbox.put("edge/t", b"first", message_id="same")
        put(outbox, "other")
        again = outbox.put("edge/t", b"second", message_id="same", importance=S)
        assert again == first
        assert outbox.count() == 2
        assert outbox.pending()[0].payload == b"first"
        # A duplicate does not replace anything either.
        outbox.put("edge/v", b"1", message_id="v1", importance=S, replace_key="viewers")
        outbox.put("edge/v", b"1", message_id="v1", importance=S, replace_key="viewers")
        assert ids(outbox.pending()) == ["same", "other", "v1"]


def test_bound_drops_stats_oldest_first_then_events_and_never_reports(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kinds = "SRSESRSSRESRSSR"  # 8 stats, 5 reports, 2 events, interleaved
    by_letter = {"S": S, "E": E, "R": R}
    with caplog.at_level(logging.WARNING), Outbox(path, max_messages=10) as outbox:
        for n, letter in enumerate(kinds):
            put(outbox, f"{letter}{n}", by_letter[letter])
        assert outbox.count() == 10
        assert ids(outbox.pending()) == [
            "R1", "E3", "R5", "R8", "E9", "S10", "R11", "S12", "S13", "R14",
        ]  # fmt: skip
        assert outbox.dropped() == {S: 5, E: 0, R: 0}

        # Reports keep coming: the three stats left go, then the events, oldest first.
        for n in range(15, 19):
            put(outbox, f"R{n}")
        assert ids(outbox.pending()) == [
            "R1", "R5", "R8", "E9", "R11", "R14", "R15", "R16", "R17", "R18",
        ]  # fmt: skip
        put(outbox, "R19")
        assert outbox.counts_by_importance() == {S: 0, E: 0, R: 10}
        assert outbox.dropped() == {S: 8, E: 2, R: 0}
        assert over_bound_warnings(caplog) == []

        # Full of reports: a new stat or event is the one dropped; a report is kept.
        put(outbox, "S20", S)
        put(outbox, "E21", E)
        put(outbox, "R22")
        put(outbox, "R23")
        assert outbox.counts_by_importance() == {S: 0, E: 0, R: 12}
        assert outbox.dropped() == {S: 9, E: 3, R: 0}
        assert over_bound_warnings(caplog) == [
            f"{OVER_BOUND} 11 reports waiting: the broker has been unreachable for a long time,"
            f" or the disk is nearly full ({path}; bound 10 messages, {200 * 1024 * 1024} bytes,"
            " the free space on disk; reports are kept, never dropped)"
        ]

        # Back within the bound, then over again: a second crossing, a second warning.
        outbox.ack_many(m.seq for m in outbox.pending(limit=3))
        put(outbox, "R24")
        assert len(over_bound_warnings(caplog)) == 1
        put(outbox, "R25")
        put(outbox, "R26")
        assert len(over_bound_warnings(caplog)) == 2

    with Outbox(path, max_messages=10) as outbox:
        assert outbox.dropped() == {S: 0, E: 0, R: 0}  # since this open
        stats = outbox.stats()
        assert stats.dropped_total == {S: 9, E: 3, R: 0}  # since the file was made
        assert stats.by_importance == {S: 0, E: 0, R: 12}


def test_reports_alone_over_the_bound_are_all_kept_with_one_warning(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), Outbox(path, max_messages=5) as outbox:
        for n in range(20):
            put(outbox, f"R{n}")
        assert ids(outbox.pending()) == [f"R{n}" for n in range(20)]
        assert outbox.dropped() == {S: 0, E: 0, R: 0}
    warnings = over_bound_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{OVER_BOUND} 6 reports waiting")


def test_byte_bound_drops_the_same_way(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), Outbox(path, max_bytes=1_000) as outbox:
        for n, letter in enumerate("SSRSESRSERERS"):  # 6 stats, 3 events, 4 reports
            put(outbox, f"{letter}{n}", {"S": S, "E": E, "R": R}[letter], size=100)
        assert outbox.size_bytes() == 1_000
        assert outbox.counts_by_importance() == {S: 3, E: 3, R: 4}
        assert ids(outbox.pending())[:3] == ["R2", "E4", "S5"]  # S0, S1, S3 went first

        put(outbox, "big", R, size=900)  # 1,900 bytes: all stats and events go, reports stay
        assert outbox.counts_by_importance() == {S: 0, E: 0, R: 5}
        assert outbox.size_bytes() == 1_300
        assert outbox.dropped() == {S: 6, E: 3, R: 0}
        assert len(over_bound_warnings(caplog)) == 1


def test_replace_key_keeps_only_the_newest_state(path: Path) -> None:
    with Outbox(path) as outbox:
        for n in range(5):
            outbox.put(
                "edge/shop-1/viewers",
                str(n).encode(),
                message_id=f"viewers-{n}",
                qos=1,
                retain=True,
                importance=S,
                replace_key="viewers",
            )
            if n == 2:
                put(outbox, "report")
        outbox.put("edge/shop-1/status", b"online", message_id="st", importance=E, replace_key="st")
        pending = outbox.pending()
        assert ids(pending) == ["report", "viewers-4", "st"]
        assert pending[1].payload == b"4"
        assert outbox.dropped() == {S: 0, E: 0, R: 0}  # superseded, not dropped
        with pytest.raises(ValueError, match="reports are never replaced"):
            outbox.put("edge/r", b"{}", message_id="r2", replace_key="viewers")


def test_ten_minutes_without_a_broker_lose_nothing(path: Path) -> None:
    """A realistic outage: stats and a state value every second, a play every 15 s, a report
    every minute, nothing acknowledged for 600 s, default bounds."""
    start = 1_700_000_000.0
    expected = []
    with Outbox(path) as outbox:
        for t in range(600):
            now = start + t
            outbox.put("edge/s/stats", b"{}" * 100, message_id=f"stats-{t}", importance=S,
                       created_wall=now)  # fmt: skip
            outbox.put("edge/s/viewers", str(t).encode(), message_id=f"v-{t}", importance=S,
                       retain=True, replace_key="viewers", created_wall=now)  # fmt: skip
            if t % 15 == 14:
                outbox.put("edge/s/play", b"{}" * 200, message_id=f"play-{t}", created_wall=now)
                expected.append(f"play-{t}")
            if t % 60 == 59:
                outbox.put("edge/s/report", b"{}" * 400, message_id=f"rep-{t}", created_wall=now)
                expected.append(f"rep-{t}")
        stats = outbox.stats(now_wall=start + 600)
        assert stats.dropped_total == {S: 0, E: 0, R: 0}
        assert stats.pending == 600 + 1 + len(expected)
        assert stats.oldest_age_s == 600.0

        # The broker is back: the sender drains in order, acknowledging as PUBACKs arrive.
        delivered = []
        while batch := outbox.pending(limit=100):
            delivered += batch
            outbox.ack_many(m.seq for m in batch)
        assert [m.seq for m in delivered] == sorted(m.seq for m in delivered)
        assert [i for i in ids(delivered) if i.startswith(("play", "rep"))] == expected
        assert [i for i in ids(delivered) if i.startswith("v-")] == ["v-599"]
        assert outbox.count() == 0
        assert outbox.oldest_age_s(start + 700) is None


def test_a_producer_and_a_drainer_in_two_threads_deliver_everything_once_in_order(
    path: Path,
) -> None:
    total = 2_000
    errors: list[BaseException] = []
    delivered: list[OutboxMessage] = []
    produced = threading.Event()
    with Outbox(path) as outbox:

        def produce() -> None:
            try:
                for i in range(total):
                    importance = (S, E, R)[i % 3]
                    outbox.put("edge/t", f"{i}".encode(), message_id=f"m{i}", importance=importance)
            except BaseException as error:
                errors.append(error)
            finally:
                produced.set()

        def drain() -> None:
            try:
                while True:
                    finished = produced.is_set()  # read before pending(): no put can follow
                    batch = outbox.pending(limit=50)
                    if not batch:
                        if finished:
                            return
                        time.sleep(0.0005)
                        continue
                    delivered.extend(batch)
                    outbox.mark_sent(m.seq for m in batch)
                    outbox.ack_many(m.seq for m in batch)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=produce), threading.Thread(target=drain)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)  # a hang guard, not a speed test
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert ids(delivered) == [f"m{i}" for i in range(total)]
        assert [m.seq for m in delivered] == sorted({m.seq for m in delivered})
        assert all(m.attempts == 0 for m in delivered)  # read before mark_sent
        assert outbox.count() == 0
        assert outbox.stats().dropped_total == {S: 0, E: 0, R: 0}


def test_a_garbage_file_is_moved_aside_and_a_fresh_outbox_starts(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"this is not an SQLite database\n" * 200
    path.write_bytes(garbage)
    Path(f"{path}-wal").write_bytes(b"\x01" * 5000)
    with caplog.at_level(logging.ERROR), Outbox(path) as outbox:
        put(outbox, "fresh")
        assert ids(outbox.pending()) == ["fresh"]
    (aside,) = path.parent.glob("outbox.db.corrupt-*[0-9TZ]")
    assert aside.read_bytes() == garbage
    # Nothing else is left beside them: no WAL of the corrupt file to replay into the new one.
    assert sorted(p.name for p in path.parent.iterdir()) == ["outbox.db", aside.name]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(path) in record.getMessage()
    assert str(aside) in record.getMessage()
    with Outbox(path) as outbox:
        assert ids(outbox.pending()) == ["fresh"]


def test_a_file_damaged_inside_is_moved_aside_too(path: Path) -> None:
    with Outbox(path) as outbox:
        for i in range(2_000):
            put(outbox, f"m{i}", size=200)
    data = bytearray(path.read_bytes())
    assert len(data) > 40 * 4096
    data[20 * 4096 : 30 * 4096] = b"\xa5" * (10 * 4096)  # the header page is intact
    path.write_bytes(bytes(data))
    with Outbox(path) as outbox:
        assert outbox.count() == 0
        put(outbox, "fresh")
    assert len(list(path.parent.glob("outbox.db.corrupt-*"))) == 1


def test_a_file_that_cannot_be_opened_is_an_error_and_is_not_moved(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        Outbox(tmp_path)  # a folder
    assert not list(tmp_path.parent.glob("*.corrupt-*"))


def test_a_newer_schema_is_refused_not_overwritten(path: Path) -> None:
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        Outbox(path)
    assert path.exists()


def test_the_file_is_in_wal_mode_and_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "outbox.db"
    with Outbox(path) as outbox:
        put(outbox, "m")
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert db.execute("PRAGMA user_version").fetchone() == (1,)
        finally:
            db.close()


def test_stats_and_ages(path: Path) -> None:
    with Outbox(path) as outbox:
        empty = outbox.stats(now_wall=100.0)
        assert (empty.pending, empty.size_bytes, empty.oldest_age_s) == (0, 0, None)
        outbox.put("t", b"12345", message_id="a", importance=S, created_wall=100.0)
        outbox.put("t", b"123", message_id="b", importance=E, created_wall=110.0)
        stats = outbox.stats(now_wall=130.0)
        assert stats.pending == 2
        assert stats.size_bytes == 8
        assert stats.by_importance == {S: 1, E: 1, R: 0}
        assert stats.oldest_age_s == 30.0
        assert outbox.oldest_age_s(now_wall=50.0) == 0.0  # the clock went back


def test_bad_arguments_are_refused(path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(path, max_messages=0)
    with pytest.raises(ValueError):
        Outbox(path, synchronous="OFF")  # type: ignore[arg-type]
    with Outbox(path) as outbox:
        with pytest.raises(ValueError, match="qos"):
            outbox.put("t", b"", message_id="a", qos=2)
        with pytest.raises(ValueError, match="message_id"):
            outbox.put("t", b"", message_id="")
        assert outbox.count() == 0


def test_an_in_memory_outbox_works_for_tests() -> None:
    with Outbox(":memory:") as outbox:
        put(outbox, "m")
        assert ids(outbox.pending()) == ["m"]


def test_full_synchronous_mode_is_available(path: Path) -> None:
    with Outbox(path, synchronous="FULL") as outbox:
        put(outbox, "m")
    with Outbox(path) as outbox:
        assert ids(outbox.pending()) == ["m"]


def test_a_put_is_all_or_nothing(path: Path) -> None:
    with Outbox(path, max_messages=2) as outbox:
        outbox.put("v", b"1", message_id="v1", importance=S, replace_key="viewers")
        put(outbox, "s", S)
        # Fails binding the insert, after the replaced state was deleted: rolled back.
        with pytest.raises(sqlite3.Error):
            outbox.put(object(), b"2", message_id="v2", importance=S, replace_key="viewers")  # type: ignore[arg-type]
        assert ids(outbox.pending()) == ["v1", "s"]
        assert outbox.stats().dropped_total == {S: 0, E: 0, R: 0}
