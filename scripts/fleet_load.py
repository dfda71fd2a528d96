#!/usr/bin/env python3
"""Fleet load: N simulated displays publishing audience reports at 1 msg/s to one mosquitto.

The issue's acceptance: "N simulated devices (N >= 1,000) publishing reports at 1 msg/s to one
local mosquitto for 60 s: delivered count = sent count; report the broker's CPU."

- The broker: its own mosquitto on a free port of 127.0.0.1 in a temporary folder (persistence
  off; no limit on messages queued or in flight for a slow subscriber), or `--broker HOST:PORT`
  with `--broker-pid PID` for its CPU.
- The devices: `--processes` worker processes, each driving its share of paho clients from ONE
  selector loop through paho's external-loop API (socket(), loop_read(), loop_write(),
  want_write(), loop_misc()): no thread per client. Each device is what the daemon looks like
  to the broker: client id edge-agent-<site>-<device>, clean session, keep-alive 30 s, last
  will `offline` (retained) on edge-agent/<site>/<device>/availability, `online` (retained)
  after connecting, then one audience_report a second (payloads.audience_report of a plausible
  AudienceReport, ≈900 bytes, fresh id and ts_ms) to edge-agent/<site>/<device>/audience/report
  at QoS 1, each device at its own random phase within the second, so the load is spread over
  the second. Connects are staggered (`--connect-rate`). At the end each device waits for its
  PUBACKs, publishes `stopped` (retained) and disconnects cleanly, like the daemon.
- The fleet's consumer: one subscriber process on edge-agent/+/+/audience/report at QoS 1,
  counting deliveries per message id (duplicates apart) and timing each against its ts_ms.

Reports: sent (= PUBACKed) and delivered counts, missing and duplicates, throughput per second
(by the second a message was sent / arrived), end-to-end latency (arrival wall clock - ts_ms;
both on this machine, ts_ms has 1 ms resolution), how late the generator published against its
schedule (if it cannot keep up, the rate is not what it claims), the broker's CPU (utime+stime
from /proc/PID/stat over the publishing window, as % of one core) and RSS, the CPU of the
generator's and the subscriber's processes, and how busy the whole machine was (/proc/stat).
The soft open-files limit is raised to the hard one (the broker it starts inherits it); a run
that needs more says so. Exits 1 if delivered != sent (or anything is missing).

Usage: scripts/fleet_load.py [--devices 1000] [--seconds 60] [--processes 2]
                             [--broker HOST:PORT [--broker-pid PID]] [--out fleet-load.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import random
import resource
import selectors
import socket
import sys
import tempfile
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from mqtt_bench_support import (
    HOST,
    MachineCpu,
    Mosquitto,
    ProcessCpu,
    make_report,
    summary,
)
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.telemetry import payloads

clock = time.monotonic  # CLOCK_MONOTONIC: one clock for every process on the machine
KEEPALIVE_S = 30  # the daemon's default mqtt.keepalive_s
DEVICES_PER_SITE = 20
DRAIN_S = 15.0  # after the run: how long to wait for the last PUBACKs and deliveries
POINTS = (50, 99)  # the percentiles in every summary

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


# --------------------------------------------------------------------------------------------
# This process's CPU


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --------------------------------------------------------------------------------------------
# One device


def device_name(n: int) -> tuple[str, str]:
    return f"site-{n // DEVICES_PER_SITE:03d}", f"display-{n % DEVICES_PER_SITE:02d}"


class Device:
    __slots__ = (
        "client",
        "device",
        "phase",
        "registered",
        "reports",
        "root",
        "site",
        "started_wall",
        "stopped_mid",
        "worker",
    )

    def __init__(self, worker: Worker, n: int, phase: float) -> None:
        self.worker = worker
        self.site, self.device = device_name(n)
        self.root = f"edge-agent/{self.site}/{self.device}"
        self.phase = phase
        self.started_wall = time.time()
        self.reports: dict[int, str] = {}  # mid -> report id, until its PUBACK
        self.stopped_mid: int | None = None
        self.registered: tuple[socket.socket, int] | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-agent-{self.site}-{self.device}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
            userdata=self,
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.will_set(
            f"{self.root}/availability", self._availability("offline"), qos=1, retain=True
        )
        client.on_connect = _on_connect
        client.on_publish = _on_publish
        client.on_disconnect = _on_disconnect
        self.client = client

    def _availability(self, state: str) -> bytes:
        body = payloads.availability(state, self.site, self.device, time.time(), self.started_wall)
        return payloads.encode(body)

    def publish_report(self) -> None:
        body = payloads.audience_report(
            self.site,
            self.device,
            make_report(self.worker.rng, time.time(), window_s=1.0, vary_brackets=True),
        )
        info = self.client.publish(f"{self.root}/audience/report", payloads.encode(body), qos=1)
        self.reports[info.mid] = body["id"]
        self.worker.published += 1

    def publish_state(self, state: str) -> int:
        topic = f"{self.root}/availability"
        return self.client.publish(topic, self._availability(state), qos=1, retain=True).mid


def _on_connect(client: mqtt.Client, device: Device, _f: Any, reason: Any, _p: Any) -> None:
    worker = device.worker
    if reason.is_failure:
        worker.connect_failures += 1
        return
    worker.connected += 1
    device.publish_state("online")


def _on_publish(client: mqtt.Client, device: Device, mid: int, _r: Any, _p: Any) -> None:
    report_id = device.reports.pop(mid, None)
    if report_id is not None:
        device.worker.acked.append(report_id)
    elif mid == device.stopped_mid:
        device.worker.stopped_acked += 1


def _on_disconnect(client: mqtt.Client, device: Device, _f: Any, reason: Any, _p: Any) -> None:
    worker = device.worker
    if not worker.stopping:
        worker.disconnects += 1
        worker.reconnect_due.append((clock() + 1.0, device))


# --------------------------------------------------------------------------------------------
# A worker process: its devices on one selector loop


class Worker:
    def __init__(self, index: int, numbers: list[int], host: str, port: int, conn: Connection):
        self.index = index
        self.host, self.port = host, port
        self.conn = conn
        self.rng = random.Random(index)
        self.selector = selectors.DefaultSelector()
        self.selector.register(conn, READ, None)
        self.devices = [Device(self, n, self.rng.random()) for n in numbers]
        self.published = 0
        self.acked: list[str] = []
        self.connected = 0
        self.connect_failures = 0
        self.connect_errors: list[str] = []
        self.disconnects = 0
        self.stopped_acked = 0
        self.stopping = False
        self.reconnect_due: list[tuple[float, Device]] = []
        self.commands: list[Any] = []

    # -- the loop ------------------------------------------------------------------------

    def watch(self, device: Device) -> None:
        """Keep the selector's interest in the device's socket in step with paho."""
        sock = device.client.socket()
        if sock is None:
            self.forget(device)
            return
        events = READ | WRITE if device.client.want_write() else READ
        if device.registered is None or device.registered[0] is not sock:
            self.forget(device)
            self.selector.register(sock, events, device)
        elif device.registered[1] != events:
            self.selector.modify(sock, events, device)
        device.registered = (sock, events)  # type: ignore[assignment]

    def forget(self, device: Device) -> None:
        if device.registered is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(device.registered[0])
            device.registered = None

    def poll(self, timeout: float) -> None:
        for key, mask in self.selector.select(max(0.0, timeout)):
            device = key.data
            if device is None:
                self.commands.append(self.conn.recv())
                continue
            client = device.client
            if mask & READ:
                client.loop_read()
            if mask & WRITE:
                client.loop_write()
            self.watch(device)
        if self.reconnect_due:
            now = clock()
            due = [d for at, d in self.reconnect_due if at <= now]
            self.reconnect_due = [(at, d) for at, d in self.reconnect_due if at > now]
            for device in due:
                self.connect(device, reconnect=True)

    def connect(self, device: Device, reconnect: bool = False) -> None:
        try:
            if reconnect:
                device.client.reconnect()
            else:
                device.client.connect(self.host, self.port, keepalive=KEEPALIVE_S)
        except OSError as error:
            self.connect_failures += 1
            if len(self.connect_errors) < 5:
                self.connect_errors.append(f"{device.root}: {error}")
            self.reconnect_due.append((clock() + 1.0, device))
            return
        self.watch(device)

    def next_command(self, timeout: float) -> Any:
        deadline = clock() + timeout
        while not self.commands and clock() < deadline:
            self.poll(min(0.05, deadline - clock()))
        return self.commands.pop(0) if self.commands else None

    # -- phases --------------------------------------------------------------------------

    def run(self, connect_rate: float) -> None:
        started = clock()
        for n, device in enumerate(self.devices):
            at = started + n / connect_rate
            while (left := at - clock()) > 0:
                self.poll(left)
            self.connect(device)
        deadline = clock() + 30
        while self.connected < len(self.devices) and clock() < deadline:
            self.poll(0.05)
        self.conn.send(
            {
                "connected": self.connected,
                "connect_s": clock() - started,
                "failures": self.connect_failures,
            }
        )
        command = None
        while command is None:
            command = self.next_command(1.0)
        _, t0, seconds = command
        self.publish_phase(t0, seconds)

    def publish_phase(self, t0: float, seconds: float) -> None:
        order = sorted(self.devices, key=lambda d: d.phase)
        per_second = [0] * (int(seconds) + 1)
        worst_lag = [0.0] * (int(seconds) + 1)
        lag_ms: list[float] = []
        end = t0 + seconds
        second, i = 0, 0
        cpu_start = None
        while True:
            device = order[i]
            due = t0 + second + device.phase
            if due >= end:
                break
            now = clock()
            if due > now:
                self.poll(due - now)
                continue
            if cpu_start is None:
                cpu_start = own_cpu_seconds()
            lag = (now - due) * 1000
            lag_ms.append(lag)
            device.publish_report()
            bucket = min(int(now - t0), len(per_second) - 1)  # by when it went, not when due
            per_second[bucket] += 1
            worst_lag[bucket] = max(worst_lag[bucket], lag)
            if i % 10 == 0:
                device.client.loop_misc()  # keep-alive bookkeeping, a device now and then
            self.watch(device)
            i += 1
            if i == len(order):
                i, second = 0, second + 1
        while clock() < end:
            self.poll(end - clock())
        cpu = own_cpu_seconds() - (cpu_start or own_cpu_seconds())
        # The last PUBACKs.
        deadline = clock() + DRAIN_S
        while any(d.reports for d in self.devices) and clock() < deadline:
            self.poll(0.05)
        unacked = sum(len(d.reports) for d in self.devices)
        self.conn.send(
            {
                "published": self.published,
                "acked": self.acked,
                "unacked": unacked,
                "per_second": per_second,
                "lag_ms": summary(lag_ms, POINTS),
                "worst_lag_ms_per_second": worst_lag,
                "cpu_s": cpu,
                "disconnects": self.disconnects,
                "connect_failures": self.connect_failures,
                "connect_errors": self.connect_errors,
            }
        )
        self.shut_down()

    def shut_down(self) -> None:
        """Like the daemon's close(): `stopped` (retained), its PUBACK, a clean DISCONNECT."""
        self.stopping = True
        for device in self.devices:
            if device.client.is_connected():
                device.stopped_mid = device.publish_state("stopped")
                self.watch(device)
        deadline = clock() + 5
        while self.stopped_acked < self.connected and clock() < deadline:
            self.poll(0.05)
        for device in self.devices:
            device.client.disconnect()
            self.forget(device)


def worker_main(index: int, numbers: list[int], host: str, port: int, rate: float, conn: Any):
    with contextlib.suppress(KeyboardInterrupt):
        Worker(index, numbers, host, port, conn).run(rate)


# --------------------------------------------------------------------------------------------
# The subscriber process


def subscriber_main(host: str, port: int, conn: Connection) -> None:
    counts: dict[str, int] = {}
    latency_ms: list[float] = []
    per_second: dict[int, int] = {}
    t0 = [float("inf")]
    subscribed = [False]

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        arrived_wall, arrived = time.time(), clock()
        body = json.loads(message.payload)
        report_id = body["id"]
        seen = counts.get(report_id, 0)
        counts[report_id] = seen + 1
        if not seen:
            latency_ms.append(arrived_wall * 1000 - body["ts_ms"])
            second = int(arrived - t0[0]) if arrived >= t0[0] else -1
            per_second[second] = per_second.get(second, 0) + 1

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="fleet-subscriber", protocol=mqtt.MQTTv311
    )
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("edge-agent/+/+/audience/report", qos=1)
    client.on_subscribe = lambda *_: subscribed.__setitem__(0, True)
    selector = selectors.DefaultSelector()
    selector.register(conn, READ, None)
    client.connect(host, port, keepalive=KEEPALIVE_S)
    registered = [client.socket(), 0]

    def watch() -> None:
        sock = client.socket()
        events = READ | WRITE if client.want_write() else READ
        if registered[1] == 0:
            selector.register(sock, events, client)
        elif registered[1] != events:
            selector.modify(sock, events, client)
        registered[1] = events

    watch()
    cpu_start = cpu_end = 0.0
    expected: int | None = None
    seen = 0
    ready_sent = False
    last_progress = clock()
    last_misc = clock()
    while True:
        for key, mask in selector.select(0.1):
            if key.data is None:
                command = conn.recv()
                if command[0] == "start":
                    t0[0] = command[1]
                    cpu_start = own_cpu_seconds()
                elif command[0] == "finish":
                    cpu_end = own_cpu_seconds()
                    expected = command[1]
                    last_progress = clock()
                continue
            if mask & READ:
                client.loop_read()
            if mask & WRITE:
                client.loop_write()
        watch()
        now = clock()
        if now - last_misc > 1.0:
            client.loop_misc()
            last_misc = now
        if subscribed[0] and not ready_sent:
            conn.send("ready")
            ready_sent = True
        if expected is not None:
            if len(counts) != seen:
                seen, last_progress = len(counts), now
            if seen >= expected or now - last_progress > DRAIN_S:
                break
    conn.send(
        {
            "counts": counts,
            "latency_ms": summary(latency_ms, POINTS),
            "per_second": per_second,
            "cpu_s": cpu_end - cpu_start,
            "finished_after_s": clock() - last_progress,
        }
    )
    client.disconnect()


# --------------------------------------------------------------------------------------------
# The run


def raise_fd_limit(needed: int) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and needed > soft:
        print(
            f"! {needed} open files needed (the broker holds one socket per device), but the"
            f" limit is {soft} (hard {hard}); raise it (ulimit -n / LimitNOFILE) or run fewer"
            " devices",
            file=sys.stderr,
        )
    return {"soft": soft, "hard": hard}


def run(args: argparse.Namespace, host: str, port: int, broker_pid: int | None) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    sub_conn, child = context.Pipe()
    subscriber = context.Process(target=subscriber_main, args=(host, port, child), daemon=True)
    subscriber.start()
    if not sub_conn.poll(30) or sub_conn.recv() != "ready":
        raise SystemExit("the subscriber did not get its SUBACK")

    processes = max(1, min(args.processes, args.devices))
    numbers = list(range(args.devices))
    conns, workers = [], []
    for index in range(processes):
        parent, child = context.Pipe()
        share = numbers[index::processes]
        rate = args.connect_rate / processes
        worker = context.Process(
            target=worker_main, args=(index, share, host, port, rate, child), daemon=True
        )
        worker.start()
        conns.append(parent)
        workers.append(worker)
    connect_started = clock()
    connects = [conn.recv() if conn.poll(120) else {"connected": 0} for conn in conns]
    connected = sum(c["connected"] for c in connects)
    connect_s = clock() - connect_started
    print(f"  {connected} of {args.devices} devices connected in {connect_s:.1f} s", flush=True)

    broker = ProcessCpu(broker_pid) if broker_pid else None
    t0 = clock() + 0.5
    for conn in [*conns, sub_conn]:
        conn.send(("start", t0, args.seconds))
    while clock() < t0:
        time.sleep(0.01)
    broker_start = broker.seconds() if broker else 0.0
    machine = MachineCpu()
    broker_per_second: list[float] = []
    previous = broker_start
    results: dict[int, dict[str, Any]] = {}
    broker_window = None
    next_sample = t0 + 1.0
    while len(results) < len(conns):
        for conn in wait([c for c in conns if conns.index(c) not in results], timeout=0.2):
            results[conns.index(conn)] = conn.recv()  # type: ignore[union-attr]
        now = clock()
        if broker is not None and now >= next_sample and broker_window is None:
            used = broker.seconds()
            broker_per_second.append((used - previous) * 100)
            previous = used
            next_sample += 1.0
            if now >= t0 + args.seconds:
                broker_window = (used - broker_start, now - t0, broker.memory_kb())
        if now >= t0 + args.seconds:
            machine.stop()  # the first call ends the span
        if now > t0 + args.seconds + DRAIN_S + 30:
            raise SystemExit("the workers did not report back")
    if broker is not None and broker_window is None:
        broker_window = (broker.seconds() - broker_start, clock() - t0, broker.memory_kb())

    acked = [report_id for r in results.values() for report_id in r["acked"]]
    sub_conn.send(("finish", len(acked)))
    if not sub_conn.poll(DRAIN_S + 30):
        raise SystemExit("the subscriber did not report back")
    delivered = sub_conn.recv()
    for worker in workers:
        worker.join(15)
    subscriber.join(5)

    counts: dict[str, int] = delivered["counts"]
    acked_set = set(acked)
    missing = len(acked_set - counts.keys())
    published_not_acked = len(counts.keys() - acked_set)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    per_second_sent = [
        sum(r["per_second"][s] for r in results.values()) for s in range(args.seconds)
    ]
    per_second_delivered = [delivered["per_second"].get(s, 0) for s in range(args.seconds)]
    generator_cpu = sum(r["cpu_s"] for r in results.values())
    machine.stop()
    machine_busy = machine.busy_cores()
    worst_lag = [
        max(r["worst_lag_ms_per_second"][s] for r in results.values()) for s in range(args.seconds)
    ]
    out: dict[str, Any] = {
        "devices": args.devices,
        "connected": connected,
        "connect_s": connect_s,
        "seconds": args.seconds,
        "processes": processes,
        "published": sum(r["published"] for r in results.values()),
        "sent": len(acked),
        "unacked": sum(r["unacked"] for r in results.values()),
        "delivered": len(acked_set & counts.keys()),
        "delivered_not_acked": published_not_acked,
        "missing": missing,
        "duplicates": duplicates,
        "disconnects": sum(r["disconnects"] for r in results.values()),
        "connect_failures": sum(r["connect_failures"] for r in results.values()),
        "connect_errors": [e for r in results.values() for e in r["connect_errors"]][:5],
        "sent_per_second": summary([float(n) for n in per_second_sent], POINTS),
        "delivered_per_second": summary([float(n) for n in per_second_delivered], POINTS),
        "sent_per_second_series": per_second_sent,
        "delivered_per_second_series": per_second_delivered,
        "latency_ms": delivered["latency_ms"],
        "schedule_lag_ms": {str(i): r["lag_ms"] for i, r in results.items()},
        "worst_lag_ms_per_second": worst_lag,
        "machine_busy_cores": machine_busy,
        "generator_cpu_percent": generator_cpu / args.seconds * 100,
        "subscriber_cpu_percent": delivered.get("cpu_s", 0.0) / args.seconds * 100,
    }
    if broker_window is not None:
        used, wall, memory = broker_window
        out["broker"] = {
            "cpu_percent": used / wall * 100,
            "cpu_s": used,
            "window_s": wall,
            "cpu_percent_per_second": summary(broker_per_second, POINTS),
            "rss_kb": memory.get("VmRSS"),
            "peak_rss_kb": memory.get("VmHWM"),
        }
    return out


def print_result(r: dict[str, Any]) -> None:
    ok = r["delivered"] == r["sent"] and not r["missing"]
    print(
        f"\n{r['devices']} devices x 1 report/s for {r['seconds']} s, {r['processes']} generator"
        f" processes, QoS 1"
    )
    rows = [
        ("connected", f"{r['connected']} in {r['connect_s']:.1f} s"),
        ("published", r["published"]),
        ("sent (PUBACKed)", r["sent"]),
        ("delivered to the subscriber", r["delivered"]),
        ("missing", r["missing"]),
        ("duplicates", r["duplicates"]),
        ("unacknowledged at the end", r["unacked"]),
        ("disconnects / connect failures", f"{r['disconnects']} / {r['connect_failures']}"),
    ]
    s, d = r["sent_per_second"], r["delivered_per_second"]
    rows.append(
        (
            "sent per second min/mean/max",
            f"{min(r['sent_per_second_series'])} / {s['mean']:.0f} / {s['max']:.0f}",
        )
    )
    rows.append(
        (
            "delivered per second min/mean/max",
            f"{min(r['delivered_per_second_series'])} / {d['mean']:.0f} / {d['max']:.0f}",
        )
    )
    lat = r["latency_ms"]
    if lat.get("n"):
        rows.append(
            (
                "end-to-end latency p50/p99/max",
                f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms",
            )
        )
    lags = [v for v in r["schedule_lag_ms"].values() if v.get("n")]
    if lags:
        rows.append(
            (
                "publish lag vs schedule p99/max",
                f"{max(v['p99'] for v in lags):.1f} / {max(v['max'] for v in lags):.1f} ms",
            )
        )
    broker = r.get("broker")
    if broker:
        per = broker["cpu_percent_per_second"]
        rows.append(
            (
                "broker CPU (% of one core)",
                f"{broker['cpu_percent']:.1f} % mean, {per.get('max', 0):.0f} % worst second",
            )
        )
        rows.append(
            (
                "broker RSS / peak",
                f"{broker['rss_kb'] / 1024:.1f} / {broker['peak_rss_kb'] / 1024:.1f} MiB",
            )
        )
    late = [s for s, lag in enumerate(r["worst_lag_ms_per_second"]) if lag > 50]
    if late:
        rows.append(("seconds with a publish > 50 ms late", f"{len(late)}: {late[:10]}"))
    rows.append(("generator CPU (% of one core)", f"{r['generator_cpu_percent']:.1f} %"))
    rows.append(("subscriber CPU (% of one core)", f"{r['subscriber_cpu_percent']:.1f} %"))
    busy = r.get("machine_busy_cores")
    if busy is not None:
        cores = r["machine"]["cpus"] if "machine" in r else os.cpu_count()
        rows.append(("machine busy, all processes", f"{busy:.2f} of {cores} cores"))
    for name, value in rows:
        print(f"  {name:<36}{value}")
    print("  OK: delivered == sent" if ok else "  FAILED: delivered != sent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--processes", type=int, default=2, help="generator processes")
    parser.add_argument(
        "--connect-rate", type=float, default=500.0, help="connects per second, all processes"
    )
    parser.add_argument("--broker", help="HOST:PORT of a running broker (default: start one)")
    parser.add_argument("--broker-pid", type=int, help="its process id, for its CPU and memory")
    parser.add_argument("--out", type=Path, default=Path("fleet-load.json"))
    args = parser.parse_args(argv)
    if args.devices < 1 or args.seconds < 1 or args.processes < 1:
        parser.error("--devices, --seconds and --processes must be positive")

    limits = raise_fd_limit(args.devices + 64)
    loadavg_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fleet-load-") as tmp:
        own = None
        if args.broker:
            host, _, port_text = args.broker.rpartition(":")
            host, port, pid = host or HOST, int(port_text), args.broker_pid
            version = args.broker
        else:
            own = Mosquitto(
                Path(tmp), extra=("max_connections -1",), missing_hint=", or use --broker"
            ).start()
            host, port = HOST, own.port
            pid = own.pid
            version = own.version
        try:
            result = run(args, host, port, pid)
        finally:
            if own is not None:
                log_text = own.log_text()
                own.stop()
    result["broker_version"] = version
    if own is not None:
        result["broker_config"] = own.config_lines
        result["broker_log_tail"] = log_text
    result["fd_limit"] = limits
    result["loadavg_before"] = loadavg_before
    result["loadavg_after"] = os.getloadavg()
    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    print(
        f"\n{version}, {result['machine']['cpus']} CPUs, Python {result['machine']['python']},"
        f" load average before {loadavg_before[0]:.2f}"
    )
    print_result(result)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0 if result["delivered"] == result["sent"] and not result["missing"] else 1


if __name__ == "__main__":
    sys.exit(main())
