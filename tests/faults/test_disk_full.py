"""A full state disk: a real tmpfs of a few hundred KB as state.dir, filled by a real file.

The outbox must keep within the disk (its WAL included), drop stats first and events next,
keep what the disk refuses in memory, tell the broker, and write everything down in order when
space returns; the daemon must never exit over it.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.telemetry.outbox import Importance, Outbox, OutboxMessage
from edge_agent.telemetry.today import TodayCounter
from tests.support.paths import REPO
from tests.support.telemetry import problems, report

S, E, R = Importance.STATS, Importance.EVENT, Importance.REPORT
LETTER = {"S": S, "E": E, "R": R}
PAYLOAD = b"x" * 600  # about a window report's size


def mount_tiny_disk(folder: Path, size: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs these as root)")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    return folder


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = mount_tiny_disk(tmp_path / "state", "512k")
    yield disk
    unmount(disk)


@pytest.fixture
def tiny_disk_256k(tmp_path: Path) -> Iterator[Path]:
    disk = mount_tiny_disk(tmp_path / "state", "256k")
    yield disk
    unmount(disk)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of the disk."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
    finally:
        os.close(descriptor)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def put(outbox: Outbox, name: str) -> int:
    return outbox.put(f"t/{name}", PAYLOAD, message_id=name, importance=LETTER[name[0]])


def names(messages: list[OutboxMessage]) -> list[str]:
    return [message.message_id for message in messages]


def everything(outbox: Outbox) -> list[OutboxMessage]:
    return outbox.pending(limit=100_000)


def test_on_a_256k_disk_the_wal_stays_inside_and_stats_go_first(tiny_disk_256k: Path) -> None:
    """Before: the WAL alone filled the disk and the 9th put raised SQLITE_FULL."""
    reports = []
    with Outbox(tiny_disk_256k / "outbox.sqlite", retry_s=3600) as outbox:
        for n in range(600):
            name = f"{'SER'[n % 3]}{n}"
            before = outbox.counts_by_importance()
            dropped_before = outbox.dropped()
            put(outbox, name)  # must not raise
            if name[0] == "R":
                reports.append(name)
            dropped = outbox.dropped()
            if dropped[E] > dropped_before[E]:
                # An event goes only when no stat is left to drop.
                assert before[S] == 0 or outbox.counts_by_importance()[S] == 0, n
            assert outbox.disk_refusal() is None, f"the disk refused put {n}"
        assert dropped[S] > 0 and dropped[E] > 0, "the disk's room made the bound drop"
        assert dropped[R] == 0
        kept = [m.message_id for m in everything(outbox) if m.importance is R]
        assert kept == reports


def test_the_files_keep_within_max_file_bytes_wal_included(tiny_disk: Path) -> None:
    bound = 256 * 1024
    with Outbox(tiny_disk / "outbox.sqlite", max_file_bytes=bound) as outbox:
        for n in range(300):
            put(outbox, f"{'SSER'[n % 4]}{n}")
            assert outbox.file_bytes() <= bound, n
        counts = outbox.counts_by_importance()
        assert counts[S] == 0 and counts[R] == 75
        assert outbox.dropped()[R] == 0


def test_a_full_disk_keeps_messages_in_memory_in_order_and_writes_them_when_space_returns(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "outbox.sqlite"
    outbox = Outbox(path, retry_s=0.05, memory_max_messages=21)
    for n in range(5):
        put(outbox, f"R{n}")
    filler = fill(tiny_disk)
    # The file's free pages and its WAL's room take a few more; then the disk refuses.
    written = [f"R{n}" for n in range(5)]
    while outbox.disk_refusal() is None:
        written.append(f"R{len(written)}")
        put(outbox, written[-1])
        assert len(written) < 2000
    ack_me = everything(outbox)[0].seq  # delivered while the disk is full
    # 10 stats, 5 events, 15 reports: with the refused one, 31 into a memory of 21.
    start = len(written)
    made = [f"{letter}{n}" for n, letter in enumerate("SER" * 5 + "SR" * 5 + "RRRRR", start)]
    for name in made:
        put(outbox, name)
    outbox.ack(ack_me)
    refusal = outbox.disk_refusal()
    assert refusal is not None and "full" in refusal.error
    assert refusal.kept_in_memory == 31
    assert refusal.dropped == {S: 10, E: 0, R: 0}
    in_order = written[1:] + [name for name in made if name[0] != "S"]
    assert names(everything(outbox)) == in_order
    # The sender goes on from memory: seqs increase, acks of held messages touch no disk.
    seqs = [m.seq for m in everything(outbox)]
    assert seqs == sorted(seqs)
    assert outbox.stats().in_memory == 21
    (notice,) = outbox.take_disk_notices()
    assert notice.refused

    filler.unlink()
    time.sleep(0.1)
    put(outbox, "R99")  # first the memory, in order, then this one
    assert outbox.disk_refusal() is None
    (back,) = outbox.take_disk_notices()
    assert not back.refused and back.kept_in_memory == 31 and back.dropped[S] == 10
    outbox.close()
    with Outbox(path) as reopened:
        assert names(everything(reopened)) == [*in_order, "R99"]
        assert reopened.stats().dropped_total[S] == 10


def test_the_memory_drops_stats_then_events_and_a_report_only_when_nothing_else_is_left(
    tiny_disk: Path,
) -> None:
    outbox = Outbox(tiny_disk / "outbox.sqlite", retry_s=3600, memory_max_messages=4)
    fill(tiny_disk)
    for name in ["S0", "E1", "R2", "S3", "R4", "E5", "R6", "R7", "R8"]:
        put(outbox, name)
    assert names(everything(outbox)) == ["R4", "R6", "R7", "R8"]
    assert outbox.dropped() == {S: 2, E: 2, R: 1}
    outbox.close()


def test_starting_on_a_full_disk_reads_the_file_and_keeps_new_messages_in_memory(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "outbox.sqlite"
    with Outbox(path) as first:
        put(first, "R0")
        last = put(first, "R1")
    filler = fill(tiny_disk)
    outbox = Outbox(path, retry_s=0.05)  # before: OperationalError, the daemon exited
    put(outbox, "R2")
    assert names(everything(outbox)) == ["R0", "R1", "R2"]
    assert everything(outbox)[-1].seq > last
    filler.unlink()
    time.sleep(0.1)
    outbox.retry_if_due()
    assert outbox.disk_refusal() is None
    outbox.close()
    with Outbox(path) as reopened:
        assert names(everything(reopened)) == ["R0", "R1", "R2"]


def test_todays_totals_survive_a_full_disk_with_one_warning(tiny_disk: Path, caplog) -> None:
    counter = TodayCounter(tiny_disk / "audience-today.json")
    filler = fill(tiny_disk)
    now = time.time()
    for n in range(3):
        counter.add(report(now + n, 2))
    warnings = [r for r in caplog.records if "today's totals" in r.getMessage()]
    assert len(warnings) == 1
    assert not (tiny_disk / "audience-today.json.tmp").exists()
    filler.unlink()
    assert counter.add(report(now + 3, 2)).passers_by == 8
    assert json.loads((tiny_disk / "audience-today.json").read_text())["passers_by"] == 8


# ---------------------------------------------------------------------------------------------
# The telemetry stage and the daemon, with a real broker


def test_the_broker_hears_what_the_full_disk_kept_and_dropped(tiny_disk: Path, broker) -> None:
    from edge_agent.telemetry.stage import TelemetryStage
    from edge_agent.telemetry.values import DaemonStats, LinkSettings, TelemetrySettings
    from tests.support.mqtt_broker import Collector

    settings = TelemetrySettings(
        LinkSettings(broker.host, broker.port, client_id=f"disk-{uuid.uuid4().hex[:6]}"),
        tiny_disk,
        site="shop",
        device="door",
        discovery=False,
    )
    # A persistent session: what is sent right after the broker's restart waits for it.
    collector = Collector(broker, ["edge-agent/shop/door/#"], clean_session=False)
    assert collector.wait_connected()
    stage = TelemetryStage(settings)
    stage.outbox.retry_s = 0.1
    stage.outbox.memory_max_messages = 6
    stage.start()
    root = "edge-agent/shop/door"
    wall = time.time()
    try:
        stage.report(report(wall))
        collector.wait_for_messages(1, f"{root}/audience/report")
        filler = fill(tiny_disk)
        broker.stop()  # nothing can leave either: memory fills and drops, and counts
        stats = DaemonStats(1, 1, 0, 0, 1, 1, 1, 1, 0, 0, True, False, None)
        while_full = []
        # The file's free pages take some; then the disk refuses, and 8 more windows come.
        refused_windows = 0
        while refused_windows < 8:
            refused_windows += stage.outbox.disk_refusal() is not None
            while_full.append(report(wall + len(while_full) + 1))
            stage.report(while_full[-1])
            stage.stats(stats, time.time())
            assert len(while_full) < 2000, "the disk never refused"
        broker.start()
        filler.unlink()
        after = report(wall + len(while_full) + 10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and stage.outbox.disk_refusal() is not None:
            stage.current(0, 0, time.monotonic(), time.time())
            time.sleep(0.05)
        stage.report(after)
        errors = f"{root}/events/error"
        assert collector.wait_for(
            lambda: any(b'"disk_back"' in p for p in collector.payloads(errors)), timeout=20
        )
        after_ts = b'"ts_ms":%d' % round(after.window_end_wall * 1000)
        assert collector.wait_for(
            lambda: any(after_ts in p for p in collector.payloads(f"{root}/audience/report")),
            timeout=20,
        )
    finally:
        stage.stop()
        collector.close()
    for message in collector.messages():
        assert problems(message.payload) == [], message.payload
    events = [json.loads(p) for p in collector.payloads(errors)]
    kinds = [event["kind"] for event in events]
    assert "disk_back" in kinds
    back = [event for event in events if event["kind"] == "disk_back"][-1]
    full_ends = {round(w.window_end_wall * 1000) for w in while_full}
    delivered = {
        json.loads(p)["ts_ms"] for p in collector.payloads(f"{root}/audience/report")
    } & full_ends
    assert back["dropped_reports"] > 0, "the memory bound of 6 had to drop some reports"
    assert back["dropped_stats"] >= 8, "every stat went before any report"
    assert len(delivered) + back["dropped_reports"] == len(while_full)


def test_the_daemon_runs_on_through_a_full_disk_and_loses_nothing_after(
    tmp_path: Path, broker
) -> None:
    """`edge-agent run` with state.dir on a tiny tmpfs that fills up for a while. Before: exit
    1 with a traceback about 10 s after the disk filled."""
    from tests.support.mqtt_broker import Collector

    state = mount_tiny_disk(tmp_path / "state", "512k")
    try:
        config = tmp_path / "config.yaml"
        config.write_text(
            "\n".join(
                [
                    "source:",
                    f"  spec: {REPO / 'samples' / 'demo.mp4'}",
                    "  loop: true",
                    "  realtime: true",
                    "audience: {window_s: 1, min_segment_size: 1}",
                    f"ads: {{player: none, rules: {REPO / 'ads' / 'rules.yaml'}}}",
                    f"state: {{dir: {state}}}",
                    "logging: {stats_interval_s: 1}",
                    f"mqtt: {{host: {broker.host}, port: {broker.port}, site: shop,"
                    " device: door, reconnect_max_s: 2}",
                ]
            )
            + "\n"
        )
        # A persistent session: what is sent right after the broker's restart waits for it.
        collector = Collector(broker, ["edge-agent/shop/door/#"], clean_session=False)
        assert collector.wait_connected()
        reports = "edge-agent/shop/door/audience/report"
        errors = "edge-agent/shop/door/events/error"
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()
        try:
            collector.wait_for_messages(2, reports, timeout=60)
            # Nothing can leave either, so the outbox must grow: the disk refuses it. The
            # broker goes first, and comes back only once the disk has room: an ack's DELETE
            # on the full disk would start a refusal of its own, with nothing kept in memory
            # (puts still fit, the bound dropping stats), and its disk_back could be the last.
            broker.stop()
            before_full = len(lines)
            filler = fill(state)
            deadline = time.monotonic() + 90
            while not any("state disk refuses writes" in line for line in lines[before_full:]):
                assert process.poll() is None, "the daemon exited on a full disk"
                assert time.monotonic() < deadline, "".join(lines[-30:])
                time.sleep(0.5)
            time.sleep(5)  # a few windows more in memory
            assert process.poll() is None, "the daemon exited on a full disk"
            filler.unlink()
            broker.start()
            assert collector.wait_for(
                lambda: any(b'"disk_back"' in p for p in collector.payloads(errors)), timeout=60
            ), (
                "".join(line for line in lines if "WARNING" in line or "MQTT" in line),
                collector.payloads(errors),
                [(m.topic, m.payload[:80]) for m in collector.messages()[-15:]],
            )
            time.sleep(3)
            assert process.poll() is None
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            reader.join(timeout=10)
            output = "".join(lines)
        assert process.returncode == 0, output
        assert "Traceback" not in output, output
        availability = "edge-agent/shop/door/availability"
        collector.wait_for(lambda: any(b'"stopped"' in p for p in collector.payloads(availability)))
        collector.close()
    finally:
        unmount(state)
    windows = [json.loads(p) for p in collector.payloads(reports)]
    unique = list({w["id"]: w for w in windows}.values())
    # (The disk_refused event itself is an event: the full disk may have dropped it before
    # any report; disk_back counts the whole stretch.)
    back = [json.loads(p) for p in collector.payloads(errors) if b'"disk_back"' in p][-1]
    assert back["kept_in_memory"] > 0
    assert back["dropped_reports"] == 0
    # Nothing lost: each window starts where the one before ended.
    for before, after in itertools.pairwise(unique):
        assert after["window_start"] == before["window_end"], (before, after)


def test_doctor_shows_the_outbox_against_its_bound_and_the_free_space(
    tmp_path: Path, capsys
) -> None:
    from edge_agent.cli import main

    tiny_disk = mount_tiny_disk(tmp_path / "state", "1m")
    bound_mb = 0.25
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "source": {"spec": str(REPO / "samples" / "astronaut.jpg")},
                "ads": {"enabled": False},
                "state": {"dir": str(tiny_disk)},
                "mqtt": {"enabled": True, "host": "127.0.0.1", "port": 1, "outbox_max_mb": 0.25},
            }
        )
    )

    def disk_row() -> dict:
        main(["doctor", "--json", "--only", "disk", "--config", str(config)])
        rows = json.loads(capsys.readouterr().out)
        return {row["check"]: row for row in rows}["disk"]

    outbox = Outbox(tiny_disk / "outbox.sqlite", max_file_bytes=round(bound_mb * 1024**2))
    try:
        for n in range(400):
            put(outbox, f"R{n}")
            if outbox.file_bytes() >= 0.95 * bound_mb * 1024**2:
                break
        row = disk_row()
        assert row["status"] == "WARN", row
        assert "of its 256 KB bound" in row["detail"] and "near its bound" in row["detail"]
        filler = fill(tiny_disk)
        row = disk_row()
        assert row["status"] == "FAIL", row
        assert row["detail"].startswith(f"0 MB free for {tiny_disk}"), row
        filler.unlink()
    finally:
        outbox.close()
        unmount(tiny_disk)
