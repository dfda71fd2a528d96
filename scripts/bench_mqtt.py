#!/usr/bin/env python3
"""MQTT telemetry: publish latency on loopback (QoS 1); the vision loop while the broker is down.

The issue's acceptance: "publish latency on loopback, QoS 1, p50 and p99 (goal p99 <= 5 ms),
and the vision loop's frame time unchanged while the broker is down". Starts its own mosquitto
on a free port of 127.0.0.1 in a temporary folder (`--broker HOST:PORT` uses one you run).

a) Latency. Audience reports (payloads.audience_report of a plausible AudienceReport: six
   segments over the k-anonymity threshold plus other/unknown, ≈890 bytes) go through the
   daemon's real path: `TelemetryStage.report()` (outbox.put into a real SQLite file, today's
   totals, link.wake(); the audience/today state goes out with each report, as in the daemon),
   the `MqttLink` sender thread, paho's network thread, the broker. Timestamps are taken by
   wrapping, on the instances only, `Outbox.put`, paho's `Client.publish` and `on_publish`, and
   `Outbox.ack_many`; a subscriber in another process (QoS 1, same broker) timestamps arrivals
   with the same monotonic clock.
   - put → PUBACK      (the headline) from just before `outbox.put()` to paho's on_publish for
                       that message: the broker has it. This is the number the goal is about.
   - put → deleted     ... until the sender thread has deleted it from the outbox.
   - put → subscriber  ... until a consumer subscribed at QoS 1 has it.
   The split cuts put → PUBACK into the put itself, the wait for the sender thread (wake-up,
   pending() query; publish() is called before mark_sent()), publish → PUBACK (paho's network
   thread and the broker), and PUBACK → deleted (the sender's ack_many).
   The baseline is a bare paho client (loop_start, inflight 100 like the link) publishing the
   same payloads at QoS 1: publish() → on_publish. Paces: one every 20 ms, one every 2 ms, and
   `burst` (back to back: for the outbox path as fast as report() returns, ~1 ms each, so its
   msgs/s is the producer's; for bare paho everything is queued at once). `backlog`: the same
   number of reports put before the link starts (an outage), then the time to drain them.
   Every pace runs against mosquitto with its defaults and with `set_tcp_nodelay true`: with
   the defaults mosquitto's socket has Nagle on, so a PUBACK that follows another one within
   the client's delayed-ACK time waits for that ACK (up to the next packet the client sends).

b) Frame time while the broker is down. The real `Daemon` (telemetry wired in, `mqtt:` config)
   runs `samples/demo.mp4` with `realtime=false` (every frame processed, back to back, looped),
   `audience.window_s=1` and `logging.stats_interval_s=1` (a report and a stats message a
   second instead of one a minute), ads off, for `--frame-seconds` per condition:
   mqtt disabled; broker up; broker down (nothing listens on the port: refused, back-off);
   broker killed (SIGKILL) halfway through the run. The frame time is the wall time between
   consecutive `on_frame` callbacks: one whole loop iteration, so it includes the pipeline and
   every telemetry call the daemon makes per frame (current(), report(), stats(), the source
   check) and any GIL time the MQTT threads take. `pipeline` is FrameResult.times.total_ms and
   `rest` the loop time minus it. After the "down" run the outbox file is opened again: its
   backlog is the messages kept; they are then sent to the broker and counted by a subscriber.

Prints tables and writes every number to JSON (`--out`).
Usage: scripts/bench_mqtt.py [--messages 2000] [--frame-seconds 10] [--skip-frames]
                             [--skip-latency] [--broker HOST:PORT] [--out bench-mqtt.json]
With --broker only that broker is measured (its configuration is yours); the "broker killed"
condition still starts a private mosquitto, to kill it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from mqtt_bench_support import (
    HOST,
    MachineCpu,
    Mosquitto,
    find_mosquitto,
    free_port,
    make_report,
    summary,
)
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.audience.values import AudienceReport
from edge_agent.config import load_config
from edge_agent.telemetry import payloads
from edge_agent.telemetry.client import MqttLink
from edge_agent.telemetry.outbox import Importance, Outbox
from edge_agent.telemetry.stage import OUTBOX_FILE, TelemetryStage
from edge_agent.telemetry.values import LinkSettings

clock = time.monotonic  # CLOCK_MONOTONIC: the same clock in the subscriber process
DEMO = Path(__file__).resolve().parent.parent / "samples" / "demo.mp4"
REPORT_TOPICS = ("edge-agent/bench/+/audience/report", "bench-baseline/+/audience/report")
WAIT_S = 30.0
NO_MOSQUITTO = ", or use --broker"


# --------------------------------------------------------------------------------------------
# Numbers


def fmt(row: dict[str, float], key: str) -> str:
    value = row.get(key)
    return f"{value:8.2f}" if isinstance(value, float) else f"{'-':>8}"


# --------------------------------------------------------------------------------------------
# The subscriber (its own process, so it takes no GIL from the publisher)


def subscriber_main(host: str, port: int, topics: list[str], conn: Connection) -> None:
    arrivals: dict[str, float] = {}
    duplicates = 0
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        nonlocal duplicates
        now = clock()
        try:
            message_id = json.loads(message.payload)["id"]
        except (ValueError, KeyError, TypeError):
            return
        with lock:
            if message_id in arrivals:
                duplicates += 1
            else:
                arrivals[message_id] = now

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe([(topic, 1) for topic in topics])

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}", protocol=mqtt.MQTTv311
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    if not subscribed.wait(10):
        conn.send("no SUBACK")
        return
    conn.send("ready")
    while True:
        command = conn.recv()
        if command is None:
            break
        wanted: set[str] = set(command)  # ids to wait for; then hand over what arrived
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with lock:
                if wanted <= arrivals.keys():
                    break
            time.sleep(0.01)
        with lock:
            conn.send(({k: arrivals[k] for k in wanted if k in arrivals}, duplicates))
            arrivals.clear()
            duplicates = 0
    client.disconnect()
    client.loop_stop()


class Subscriber:
    def __init__(self, host: str, port: int, topics: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=subscriber_main, args=(host, port, topics, child), daemon=True
        )
        self.process.start()
        answer = self.conn.recv() if self.conn.poll(20) else "no answer"
        if answer != "ready":
            raise SystemExit(f"subscriber: {answer}")

    def collect(self, ids: list[str]) -> tuple[dict[str, float], int]:
        self.conn.send(ids)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(5)


# --------------------------------------------------------------------------------------------
# a) latency


class LinkProbe:
    """Timestamps on a TelemetryStage's own objects; wraps instance attributes only."""

    def __init__(self, outbox: Outbox, link: MqttLink) -> None:
        self.puts: dict[bytes, tuple[float, float, int]] = {}  # payload -> start, end, seq
        self.publishes: list[tuple[int, float, bytes]] = []  # mid, handed to paho, payload
        self.pubacks: list[tuple[int, float]] = []  # mid, on_publish (network thread)
        self.deleted: dict[int, float] = {}  # seq -> ack_many returned
        put, ack_many = outbox.put, outbox.ack_many
        client = link._client
        publish, on_publish = client.publish, client.on_publish

        def timed_put(topic: str, payload: bytes, **options: Any) -> int:
            start = clock()
            seq = put(topic, payload, **options)
            self.puts[bytes(payload)] = (start, clock(), seq)
            return seq

        def timed_ack_many(seqs: Any) -> None:
            seqs = list(seqs)
            ack_many(seqs)
            now = clock()
            for seq in seqs:
                self.deleted[seq] = now

        def timed_publish(topic: str, payload: Any = None, *args: Any, **kw: Any) -> Any:
            start = clock()
            info = publish(topic, payload, *args, **kw)
            self.publishes.append((info.mid, start, payload))
            return info

        def timed_on_publish(*args: Any) -> None:
            self.pubacks.append((args[2], clock()))
            on_publish(*args)

        outbox.put = timed_put  # type: ignore[method-assign]
        outbox.ack_many = timed_ack_many  # type: ignore[method-assign]
        client.publish = timed_publish  # type: ignore[method-assign]
        client.on_publish = timed_on_publish

    def all_deleted(self) -> bool:
        return all(seq in self.deleted for _, _, seq in list(self.puts.values()))

    def rows(self) -> dict[str, dict[str, float]]:
        """message id -> timestamps of the records put (states are not measured)."""
        acks: dict[int, list[float]] = defaultdict(list)
        for mid, at in self.pubacks:
            acks[mid].append(at)
        seen: dict[int, int] = defaultdict(int)
        first_publish: dict[bytes, tuple[float, float | None]] = {}
        for mid, at, payload in self.publishes:
            n = seen[mid]
            seen[mid] += 1
            puback = acks[mid][n] if n < len(acks[mid]) else None
            if isinstance(payload, bytes) and payload not in first_publish:
                first_publish[payload] = (at, puback)
        rows = {}
        for payload, (put_start, put_end, seq) in self.puts.items():
            published, puback = first_publish.get(payload, (None, None))
            rows[json.loads(payload)["id"]] = {
                "put": put_start,
                "put_end": put_end,
                "publish": published,
                "puback": puback,
                "deleted": self.deleted.get(seq),
            }
        return rows


def pace(n: int, interval_s: float, send: Callable[[int], None]) -> float:
    """Call send(i) n times, i-th at start + i * interval_s; returns the start."""
    start = clock() + 0.005
    for i in range(n):
        target = start + i * interval_s
        while (left := target - clock()) > 0:
            time.sleep(left)
        send(i)
    return start


def spans(rows: list[dict[str, float | None]], a: str, b: str) -> list[float]:
    return [(r[b] - r[a]) * 1000 for r in rows if r.get(a) is not None and r.get(b) is not None]


def outbox_run(
    host: str, port: int, folder: Path, device: str, n: int, interval_s: float, sub: Subscriber
) -> dict[str, Any]:
    environ = {
        "EDGE_AGENT__MQTT__HOST": host,
        "EDGE_AGENT__MQTT__PORT": str(port),
        "EDGE_AGENT__MQTT__SITE": "bench",
        "EDGE_AGENT__MQTT__DEVICE": device,
        "EDGE_AGENT__STATE__DIR": str(folder),
    }
    stage = TelemetryStage(load_config(None, environ=environ).telemetry_settings())
    probe = LinkProbe(stage.outbox, stage.link)
    rng = random.Random(1)
    stage.start()
    deadline = time.monotonic() + 10
    while not stage.link_status().connected and time.monotonic() < deadline:
        time.sleep(0.01)
    # Warm-up (not counted): the states sent on connect, first queries, the subscription path.
    pace(50, 0.002, lambda i: stage.report(make_report(rng, time.time())))
    wait_until(probe.all_deleted)
    probe.puts.clear()
    started = clock()
    pace(n, interval_s, lambda i: stage.report(make_report(rng, time.time())))
    done = wait_until(probe.all_deleted)
    rows = probe.rows()
    arrivals, duplicates = sub.collect(list(rows))
    stage.stop()
    for message_id, row in rows.items():
        row["subscriber"] = arrivals.get(message_id)
    values = list(rows.values())
    last_ack = max((r["puback"] or 0.0) for r in values)
    return {
        "n": len(values),
        "complete": done,
        "duplicates_at_subscriber": duplicates,
        "missing_at_subscriber": sum(r["subscriber"] is None for r in values),
        "put_to_puback_ms": summary(spans(values, "put", "puback")),
        "put_to_deleted_ms": summary(spans(values, "put", "deleted")),
        "put_to_subscriber_ms": summary(spans(values, "put", "subscriber")),
        "breakdown_ms": {
            "put": summary(spans(values, "put", "put_end")),
            "wait_for_sender": summary(spans(values, "put_end", "publish")),
            "publish_to_puback": summary(spans(values, "publish", "puback")),
            "puback_to_deleted": summary(spans(values, "puback", "deleted")),
        },
        "msgs_per_s": len(values) / max(last_ack - started, 1e-9),
        "payload_bytes": sum(len(p) for p in probe.puts) / max(1, len(probe.puts)),
    }


def backlog_run(host: str, port: int, folder: Path, n: int, sub: Subscriber) -> dict[str, Any]:
    """n reports put while the link is not started (an outage), then start: how fast it drains."""
    environ = {
        "EDGE_AGENT__MQTT__HOST": host,
        "EDGE_AGENT__MQTT__PORT": str(port),
        "EDGE_AGENT__MQTT__SITE": "bench",
        "EDGE_AGENT__MQTT__DEVICE": "backlog",
        "EDGE_AGENT__STATE__DIR": str(folder),
    }
    stage = TelemetryStage(load_config(None, environ=environ).telemetry_settings())
    probe = LinkProbe(stage.outbox, stage.link)
    rng = random.Random(3)
    for _ in range(n):
        stage.report(make_report(rng, time.time()))
    started = clock()
    stage.start()
    done = wait_until(probe.all_deleted, timeout=120)
    seconds = clock() - started
    ids = list(probe.rows())
    arrivals, duplicates = sub.collect(ids)
    stage.stop()
    return {
        "n": n,
        "complete": done,
        "seconds": seconds,
        "msgs_per_s": n / seconds,
        "delivered": len(arrivals),
        "duplicates_at_subscriber": duplicates,
    }


def paho_run(
    host: str, port: int, device: str, n: int, interval_s: float, sub: Subscriber
) -> dict[str, Any]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{device}", protocol=mqtt.MQTTv311
    )
    client.max_inflight_messages_set(100)  # the link's window
    client.max_queued_messages_set(0)
    pubacks: dict[int, float] = {}
    client.on_publish = lambda _c, _u, mid, *_: pubacks.__setitem__(mid, clock())
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(host, port)
    client.loop_start()
    connected.wait(10)
    rng = random.Random(2)
    topic = f"bench-baseline/{device}/audience/report"
    sent: list[tuple[int, float, str]] = []
    bodies = [payloads.audience_report("bench", device, make_report(rng, time.time()))]

    def send(_i: int) -> None:
        body = payloads.audience_report("bench", device, make_report(rng, time.time()))
        encoded = payloads.encode(body)
        start = clock()
        info = client.publish(topic, encoded, qos=1)
        sent.append((info.mid, start, body["id"]))

    pace(50, 0.002, send)  # warm-up
    wait_until(lambda: all(mid in pubacks for mid, _, _ in sent))
    sent.clear()
    pubacks.clear()
    started = clock()
    pace(n, interval_s, send)
    done = wait_until(lambda: all(mid in pubacks for mid, _, _ in sent))
    arrivals, duplicates = sub.collect([message_id for _, _, message_id in sent])
    client.disconnect()
    client.loop_stop()
    rows = [
        {"publish": start, "puback": pubacks.get(mid), "subscriber": arrivals.get(message_id)}
        for mid, start, message_id in sent
    ]
    last_ack = max((r["puback"] or 0.0) for r in rows)
    return {
        "n": len(rows),
        "complete": done,
        "duplicates_at_subscriber": duplicates,
        "missing_at_subscriber": sum(r["subscriber"] is None for r in rows),
        "publish_to_puback_ms": summary(spans(rows, "publish", "puback")),
        "publish_to_subscriber_ms": summary(spans(rows, "publish", "subscriber")),
        "msgs_per_s": len(rows) / max(last_ack - started, 1e-9),
        "payload_bytes": len(payloads.encode(bodies[0])),
    }


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


BROKER_CONFIGS = {
    "mosquitto defaults": (),
    "set_tcp_nodelay true": ("set_tcp_nodelay true",),
}


def latency_on(host: str, port: int, folder: Path, messages: int) -> dict[str, Any]:
    paces = {
        "20 ms": (min(messages, 250), 0.020),
        "2 ms": (messages, 0.002),
        "burst": (messages, 0.0),
    }
    sub = Subscriber(host, port, list(REPORT_TOPICS))
    machine = MachineCpu()
    result: dict[str, Any] = {"outbox": {}, "paho": {}, "paces": {}}
    try:
        for pace_name, (n, interval) in paces.items():
            device = pace_name.replace(" ", "")
            result["paces"][pace_name] = {"messages": n, "interval_ms": interval * 1000}
            result["paho"][pace_name] = paho_run(host, port, device, n, interval, sub)
            run_folder = folder / f"latency-{device}-{port}"
            result["outbox"][pace_name] = outbox_run(
                host, port, run_folder, device, n, interval, sub
            )
        result["backlog"] = backlog_run(host, port, folder / f"backlog-{port}", messages, sub)
    finally:
        sub.close()
    result["machine_busy_cores"] = machine.busy_cores()
    return result


def latency(folder: Path, messages: int, broker: tuple[str, int] | None) -> dict[str, Any]:
    """Each pace on each broker configuration (only the given broker with --broker)."""
    if broker is not None:
        print(f"  latency: {broker[0]}:{broker[1]} ...", flush=True)
        return {f"{broker[0]}:{broker[1]}": latency_on(*broker, folder, messages)}
    results = {}
    for name, extra in BROKER_CONFIGS.items():
        print(f"  latency: mosquitto with {name} ...", flush=True)
        own = Mosquitto(folder, extra=extra, missing_hint=NO_MOSQUITTO).start()
        try:
            results[name] = latency_on(own.host, own.port, folder, messages)
            results[name]["broker_config"] = own.config_lines
        finally:
            own.stop()
    return results


def print_latency(results: dict[str, Any]) -> None:
    for config, result in results.items():
        busy = result.get("machine_busy_cores")
        busy_text = f"; machine busy {busy:.2f} cores" if busy is not None else ""
        print(f"\nbroker: {config}{busy_text}")
        head = f"{'path':<34}{'pace':<8}{'n':>6}"
        cols = "".join(f"{c:>8}" for c in ("p50", "p90", "p99", "max"))
        print(f"{head}{cols}{'msgs/s':>9}   (ms)")
        for pace_name in result["paces"]:
            o, p = result["outbox"][pace_name], result["paho"][pace_name]
            lines = [
                ("outbox: put → PUBACK", o, o["put_to_puback_ms"]),
                ("outbox: put → deleted", o, o["put_to_deleted_ms"]),
                ("outbox: put → subscriber", o, o["put_to_subscriber_ms"]),
                ("bare paho: publish → PUBACK", p, p["publish_to_puback_ms"]),
                ("bare paho: publish → subscriber", p, p["publish_to_subscriber_ms"]),
            ]
            for name, run, row in lines:
                numbers = "".join(fmt(row, key) for key in ("p50", "p90", "p99", "max"))
                print(
                    f"{name:<34}{pace_name:<8}{row.get('n', 0):>6}{numbers}"
                    f"{run['msgs_per_s']:>9.0f}"
                )
        backlog = result["backlog"]
        print(
            f"{'outbox: backlog of ' + str(backlog['n']) + ' drained':<34}{'':<8}{'':>6}"
            f"{'':>32}{backlog['msgs_per_s']:>9.0f}   ({backlog['seconds']:.2f} s,"
            f" {backlog['delivered']} delivered)"
        )
        print(
            f"{'  outbox put → PUBACK, split:':<34}{'pace':<8}{'':>6}"
            f"{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"
        )
        for pace_name in result["paces"]:
            for part, row in result["outbox"][pace_name]["breakdown_ms"].items():
                numbers = "".join(fmt(row, key) for key in ("p50", "p90", "p99", "max"))
                print(f"    {part:<30}{pace_name:<8}{'':>6}{numbers}")
        for path in ("outbox", "paho"):
            for pace_name, run in result[path].items():
                problems = run["missing_at_subscriber"] or run["duplicates_at_subscriber"]
                if problems or not run["complete"]:
                    print(
                        f"! {path} {pace_name}: complete={run['complete']}"
                        f" missing={run['missing_at_subscriber']}"
                        f" duplicates={run['duplicates_at_subscriber']}"
                    )


# --------------------------------------------------------------------------------------------
# b) frame time


def frame_run(
    condition: str,
    folder: Path,
    seconds: float,
    broker_host: str,
    broker_port: int,
    kill: Callable[[], None] | None,
) -> dict[str, Any]:
    from edge_agent.daemon import Daemon

    state = folder / f"frames-{condition.replace(' ', '-')}"
    environ = {
        "EDGE_AGENT__SOURCE__SPEC": str(DEMO),
        "EDGE_AGENT__SOURCE__REALTIME": "false",
        "EDGE_AGENT__SOURCE__LOOP": "true",
        "EDGE_AGENT__ADS__ENABLED": "false",
        "EDGE_AGENT__STATE__DIR": str(state),
        "EDGE_AGENT__AUDIENCE__WINDOW_S": "1",
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "1",
        "EDGE_AGENT__MQTT__ENABLED": "false" if condition == "mqtt disabled" else "true",
        "EDGE_AGENT__MQTT__HOST": broker_host,
        "EDGE_AGENT__MQTT__PORT": str(broker_port),
        "EDGE_AGENT__MQTT__SITE": "bench",
        "EDGE_AGENT__MQTT__DEVICE": "frames",
    }
    config = load_config(None, environ=environ)
    ticks: list[float] = []
    pipeline_ms: list[float] = []
    reports: list[AudienceReport] = []

    def on_frame(result: Any) -> None:
        ticks.append(clock())
        pipeline_ms.append(result.times.total_ms)

    daemon = Daemon(config, on_frame=on_frame, on_report=reports.append)
    telemetry = getattr(daemon, "telemetry", None)
    if config.mqtt.enabled and telemetry is None:
        raise SystemExit("edge_agent.daemon.Daemon has no telemetry stage: is it wired in?")
    probe = LinkProbe(telemetry.outbox, telemetry.link) if telemetry is not None else None
    killed_at: list[float] = []

    def timer() -> None:
        if kill is not None:
            time.sleep(seconds / 2)
            kill()
            killed_at.append(clock())
            time.sleep(seconds / 2)
        else:
            time.sleep(seconds)
        daemon.stop()

    threading.Thread(target=timer, daemon=True).start()
    machine = MachineCpu()
    daemon.run()
    busy = machine.busy_cores()
    warm = 20  # the first frames load models and fill the decoder
    intervals = [(b - a) * 1000 for a, b in zip(ticks[warm:], ticks[warm + 1 :], strict=False)]
    rest = [i - p for i, p in zip(intervals, pipeline_ms[warm + 1 :], strict=False)]
    result: dict[str, Any] = {
        "frames": len(ticks),
        "fps": (len(ticks) - warm - 1) / max(ticks[-1] - ticks[warm], 1e-9),
        "frame_ms": summary(intervals),
        "pipeline_ms": summary(pipeline_ms[warm + 1 :]),
        "rest_ms": summary(rest),
        "reports": len(reports),
        "machine_busy_cores": busy,
    }
    if killed_at:
        after = [(b - a) * 1000 for a, b in itertools.pairwise(ticks) if a >= killed_at[0]]
        result["frame_ms_after_kill"] = summary(after)
    if probe is not None:
        rows = list(probe.rows().values())
        result["in_daemon_put_to_puback_ms"] = summary(spans(rows, "put", "puback"))
    if telemetry is not None:
        with Outbox(state / OUTBOX_FILE) as outbox:
            stats = outbox.stats()
            result["backlog"] = {
                "pending": stats.pending,
                "reports": stats.by_importance[Importance.REPORT],
                "stats": stats.by_importance[Importance.STATS],
                "events": stats.by_importance[Importance.EVENT],
                "dropped": sum(stats.dropped_total.values()),
            }
        result["state_dir"] = str(state)
    return result


def drain_backlog(state: Path, host: str, port: int) -> dict[str, Any]:
    """Send what the "down" run kept to a live broker; a subscriber counts what arrives."""
    outbox = Outbox(state / OUTBOX_FILE)
    ids = [m.message_id for m in outbox.pending(limit=1_000_000)]
    sub = Subscriber(host, port, ["edge-agent/bench/frames/#"])
    link = MqttLink(
        LinkSettings(host=host, port=port, client_id="bench-drain"),
        outbox,
        availability_topic="edge-agent/bench/drain/availability",
        make_availability=lambda state: state.encode(),
    )
    started = clock()
    link.start()
    emptied = wait_until(lambda: outbox.count() == 0)
    seconds = clock() - started
    link.close()
    arrivals, duplicates = sub.collect(ids)
    sub.close()
    outbox.close()
    return {
        "kept": len(ids),
        "delivered": len(arrivals),
        "lost": len(ids) - len(arrivals),
        "duplicates": duplicates,
        "outbox_emptied": emptied,
        "seconds": seconds,
    }


def frames(folder: Path, seconds: float, broker: tuple[str, int] | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    host, port = broker if broker else (HOST, 0)
    conditions = ["mqtt disabled", "broker up", "broker down", "broker killed"]
    for condition in conditions:
        print(f"  frames: {condition}, {seconds:.0f} s ...", flush=True)
        kill = None
        private: Mosquitto | None = None
        run_host = HOST
        if condition == "broker up" and broker is not None:
            run_host, run_port = host, port
        elif condition in ("broker up", "broker killed"):
            if find_mosquitto() is None:
                print("    (no mosquitto to start and kill here; skipped)")
                continue
            private = Mosquitto(folder, missing_hint=NO_MOSQUITTO).start()
            run_port, kill = private.port, (private.kill if condition == "broker killed" else None)
        else:
            run_port = free_port()  # nothing listens there
        try:
            results[condition] = frame_run(condition, folder, seconds, run_host, run_port, kill)
        finally:
            if private is not None:
                private.stop()
    down = results.get("broker down")
    if down is not None:
        print("  frames: sending the 'down' backlog to a live broker ...", flush=True)
        private = None
        if broker is None:
            private = Mosquitto(folder, missing_hint=NO_MOSQUITTO).start()
            host, port = private.host, private.port
        try:
            down["drained"] = drain_backlog(Path(down["state_dir"]), host, port)
        finally:
            if private is not None:
                private.stop()
    return results


def print_frames(results: dict[str, Any], seconds: float) -> None:
    print(
        f"\nframe time, {DEMO.name} realtime=false, window 1 s, stats 1 s,"
        f" {seconds:.0f} s per condition (ms; busy: the whole machine, in cores)"
    )
    print(
        f"{'condition':<26}{'frames':>7}{'fps':>7}{'mean':>8}{'p50':>8}{'p99':>8}{'max':>8}"
        f"{'pipeline':>10}{'rest':>7}{'rest p99':>9}{'backlog':>9}{'busy':>6}"
    )
    for condition, r in results.items():
        rows = [(condition, r["frame_ms"])]
        if "frame_ms_after_kill" in r:
            rows.append(("  after the kill", r["frame_ms_after_kill"]))
        for index, (name, f) in enumerate(rows):
            extra = ""
            if index == 0:
                backlog = r.get("backlog", {}).get("pending", "-")
                busy = r.get("machine_busy_cores")
                extra = (
                    f"{r['pipeline_ms']['mean']:>10.2f}{r['rest_ms']['mean']:>7.2f}"
                    f"{r['rest_ms']['p99']:>9.2f}{backlog!s:>9}"
                    f"{busy if busy is None else format(busy, '.2f'):>6}"
                )
            frames_col = f"{r['frames']:>7}{r['fps']:>7.1f}" if index == 0 else f"{'':>14}"
            print(
                f"{name:<26}{frames_col}{f['mean']:>8.2f}{f['p50']:>8.2f}{f['p99']:>8.2f}"
                f"{f['max']:>8.2f}{extra}"
            )
    for condition, r in results.items():
        if "in_daemon_put_to_puback_ms" in r and r["in_daemon_put_to_puback_ms"].get("n"):
            s = r["in_daemon_put_to_puback_ms"]
            print(
                f"{condition}: put → PUBACK inside the running daemon: n={s['n']}"
                f" p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms, max {s['max']:.2f} ms"
            )
    down = results.get("broker down")
    if down and "backlog" in down:
        b, d = down["backlog"], down.get("drained", {})
        print(
            f"broker down: {down['reports']} reports made, outbox kept {b['pending']} messages"
            f" ({b['reports']} reports, {b['stats']} stats, {b['events']} events,"
            f" {b['dropped']} dropped); sent after the broker came back: {d.get('delivered')}"
            f" delivered, {d.get('lost')} lost, {d.get('duplicates')} duplicates,"
            f" in {d.get('seconds', 0):.2f} s"
        )


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="per pace (default 2000)")
    parser.add_argument("--frame-seconds", type=float, default=10.0, help="per condition")
    parser.add_argument("--skip-frames", action="store_true", help="latency only")
    parser.add_argument("--skip-latency", action="store_true", help="frame time only")
    parser.add_argument("--broker", help="HOST:PORT of a running broker (default: start one)")
    parser.add_argument("--out", type=Path, default=Path("bench-mqtt.json"))
    parser.add_argument("-v", "--verbose", action="store_true", help="the daemon's INFO logs")
    args = parser.parse_args(argv)
    if not 10 <= args.messages <= 60_000:
        parser.error("--messages: 10 to 60000 (paho's message ids are 16 bits)")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    broker: tuple[str, int] | None = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        broker = (host or HOST, int(port))
    if not args.skip_frames and not DEMO.exists():
        parser.error(f"{DEMO} is missing (scripts/make_demo_footage.py); or --skip-frames")

    result: dict[str, Any] = {"loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        folder = Path(tmp)
        if broker is None:
            result["broker"] = {"version": Mosquitto(folder, missing_hint=NO_MOSQUITTO).version}
        else:
            result["broker"] = {"address": args.broker}
        if not args.skip_latency:
            result["latency"] = latency(folder, args.messages, broker)
        if not args.skip_frames:
            result["frames"] = frames(folder, args.frame_seconds, broker)
    result["loadavg_after"] = os.getloadavg()
    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "paho": getattr(mqtt, "__version__", None) or _paho_version(),
    }
    print(
        f"\n{result['broker'].get('version', result['broker'].get('address'))},"
        f" {result['machine']['cpus']} CPUs, Python {result['machine']['python']},"
        f" paho-mqtt {result['machine']['paho']}, load average before"
        f" {result['loadavg_before'][0]:.2f}, after {result['loadavg_after'][0]:.2f}"
    )
    if "latency" in result:
        first = next(iter(result["latency"].values()))
        size = first["outbox"]["2 ms"]["payload_bytes"]
        print(f"publish latency, QoS 1, loopback; audience reports of ≈{size:.0f} bytes")
        print_latency(result["latency"])
    if "frames" in result:
        print_frames(result["frames"], args.frame_seconds)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return 0


def _paho_version() -> str:
    from importlib.metadata import version

    return version("paho-mqtt")


if __name__ == "__main__":
    sys.exit(main())
