"""Disk-full drill: the real daemon with its state folder on a tiny tmpfs that fills up for minutes.

    sudo .venv/bin/python scripts/disk_full_drill.py [--full-s 300] [--window-s 5] [--out x.json]

`edge-agent run` (a subprocess) counts looping demo footage with `--window-s` windows and
publishes to a real mosquitto. Its `state.dir` is a tmpfs of `--disk-kb` (needs root to mount).
Phases: running (`--before-s`), the disk kept filled to the last byte by a filler file
(`--full-s`; topped up twice a second, so that what the daemon frees is taken at once), the
filler deleted, running on (`--after-s`), SIGTERM. With `--broker-down` the
broker is stopped while the disk is full too, so that nothing can leave either and the daemon's
memory has to hold (or drop, and count) what it makes.

A subscriber with a persistent session (QoS 1, clean_session false) records every window report
and every `events/error`. The drill passes when the daemon never exited before the SIGTERM,
exits 0 without a traceback, the windows received follow each other without a gap (a window
starts where the one before ended), and every window that ended while the disk was full was
either delivered or is counted in `dropped_reports` of a published `disk_refused`/`disk_back`
event: the windows received cover the run, and the windows missing in any gaps are no more
than that count. `--out` writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from mqtt_bench_support import HOST, Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
ROOT_TOPIC = "edge-agent/drill/screen"
COUNTS = ("kind", "duration_s", "kept_in_memory")
COUNTS += ("dropped_stats", "dropped_events", "dropped_reports")


class Subscriber:
    """Every report and error event, in arrival order, from a persistent QoS 1 session."""

    def __init__(self, port: int) -> None:
        self.reports: list[dict] = []
        self.errors: list[dict] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="disk-full-drill", clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)  # type: ignore[arg-type]
        self.client.on_connect = lambda client, *_: client.subscribe(
            [(f"{ROOT_TOPIC}/audience/report", 1), (f"{ROOT_TOPIC}/events/error", 1)]
        )
        self.client.on_message = self._on_message
        self.client.connect(HOST, port)
        self.client.loop_start()

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        with self.lock:
            (self.reports if message.topic.endswith("/report") else self.errors).append(payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


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
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return filler


def _wall(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def outbox_kb(disk: Path) -> float:
    files = [disk / f"outbox.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
    return sum(f.stat().st_blocks * 512 for f in files if f.exists()) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-s", type=float, default=20.0)
    parser.add_argument("--full-s", type=float, default=300.0)
    parser.add_argument("--after-s", type=float, default=30.0)
    parser.add_argument("--window-s", type=float, default=5.0)
    parser.add_argument("--disk-kb", type=int, default=512)
    parser.add_argument("--broker-down", action="store_true", help="stop it while full, too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the drill mounts a tmpfs: run it as root")

    folder = Path(tempfile.mkdtemp(prefix="edge-agent-disk-drill-"))
    state = folder / "state"
    state.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={args.disk_kb}k", "tmpfs", str(state)], check=True
    )
    broker = Mosquitto(folder / "broker", persistence_folder=folder / "broker")
    (folder / "broker").mkdir()
    broker.start()
    subscriber = Subscriber(broker.port)
    config = folder / "config.yaml"
    config.write_text(
        "\n".join(
            [
                "source:",
                f"  spec: {REPO / 'samples' / 'demo.mp4'}",
                "  loop: true",
                "  realtime: true",
                f"audience: {{window_s: {args.window_s}, min_segment_size: 1}}",
                f"ads: {{player: none, rules: {REPO / 'ads' / 'rules.yaml'}}}",
                f"state: {{dir: {state}}}",
                "logging: {stats_interval_s: 10}",
                f"mqtt: {{host: {HOST}, port: {broker.port}, site: drill, device: screen,"
                " reconnect_max_s: 5}",
            ]
        )
        + "\n"
    )
    log_path = folder / "daemon.log"
    log = log_path.open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    exited_early: int | None = None
    peak_outbox_kb = 0.0

    def wait(seconds: float, keep_full: bool = False) -> None:
        nonlocal exited_early, peak_outbox_kb
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if keep_full:
                fill(state)  # whatever the daemon frees (a truncated WAL) is taken at once
            if exited_early is None and daemon.poll() is not None:
                exited_early = daemon.returncode
                print(f"the daemon EXITED with {exited_early}", flush=True)
            peak_outbox_kb = max(peak_outbox_kb, outbox_kb(state))
            time.sleep(0.5)

    try:
        print(f"running {args.before_s:.0f} s", flush=True)
        wait(args.before_s)
        filler = fill(state)
        full_from = time.time()
        if args.broker_down:
            broker.stop()
        print(f"state disk FULL for {args.full_s:.0f} s", flush=True)
        wait(args.full_s, keep_full=True)
        if args.broker_down:
            broker.start()
        filler.unlink()
        full_until = time.time()
        print(f"space back; running {args.after_s:.0f} s more", flush=True)
        wait(args.after_s)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
        time.sleep(2.0)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
        subscriber.close()
        broker.stop()
        subprocess.run(["umount", "-l", str(state)], check=False)

    output = log_path.read_text(errors="replace")
    with subscriber.lock:
        reports = list({r["id"]: r for r in subscriber.reports}.values())
        errors = list(subscriber.errors)
    duplicates = len(subscriber.reports) - len(reports)
    reports.sort(key=lambda r: r["ts_ms"])
    gaps = [
        (before["window_end"], after["window_start"])
        for before, after in itertools.pairwise(reports)
        if after["window_start"] != before["window_end"]
    ]
    ended_while_full = [r for r in reports if full_from * 1000 <= r["ts_ms"] <= full_until * 1000]
    missing_windows = sum(round((_wall(start) - _wall(end)) / args.window_s) for end, start in gaps)
    disk_events = [e for e in errors if e["kind"] in ("disk_refused", "disk_back")]
    last = disk_events[-1] if disk_events else {}
    dropped_reports = int(last.get("dropped_reports", 0))
    # Windows are contiguous (each starts where the one before ended), so a window the daemon
    # made and nobody received shows as a gap, or as a missing tail before the SIGTERM.
    covered = bool(reports) and reports[0]["ts_ms"] < full_from * 1000
    covered = covered and reports[-1]["ts_ms"] > full_until * 1000
    results = {
        "full_s": args.full_s,
        "window_s": args.window_s,
        "disk_kb": args.disk_kb,
        "broker_down_while_full": args.broker_down,
        "daemon_exited_before_sigterm": exited_early,
        "exit_code": code,
        "tracebacks": output.count("Traceback"),
        "reports_received_unique": len(reports),
        "duplicates": duplicates,
        "gaps": len(gaps),
        "gap_list": gaps[:10],
        "windows_missing_in_gaps": missing_windows,
        "reports_ended_while_full_delivered": len(ended_while_full),
        "received_from_before_the_fill_to_after_the_free": covered,
        "disk_events": [{key: event.get(key) for key in (*COUNTS,)} for event in disk_events],
        "dropped_reports_in_last_event": dropped_reports,
        "peak_outbox_kb": round(peak_outbox_kb, 1),
        "log_lines_about_the_disk": sum(
            "state disk" in line or "today's totals" in line for line in output.splitlines()
        ),
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    passed = (
        exited_early is None
        and code == 0
        and results["tracebacks"] == 0
        and missing_windows <= dropped_reports
        # The disk may never have refused (the outbox's own file had room): then no events.
        and (not disk_events or disk_events[-1]["kind"] == "disk_back")
        and covered
    )
    print("PASS" if passed else f"FAIL (daemon log: {log_path})")
    if passed:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
