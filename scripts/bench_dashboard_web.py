#!/usr/bin/env python3
"""The web dashboard under a fleet's load: memory, CPU, chart updates, latency to the page.

`--devices` simulated displays (scripts/fleet_load.py, one audience report a second each) ->
a private mosquitto -> `edge-agent dashboard --web` (a subprocess) -> its page in headless
Chromium (playwright). Once a second during the load it reads the dashboard's RSS and asks the
page for a round trip into its main thread (`page.evaluate`); every 5 s a probe client
publishes today's passers-by of a probe display (a number the fleet's displays never send) and
times it from publish to the number in the page's text. Afterwards: the dashboard's CPU (% of
one core over the load), how many states the page received, and per chart the most updates in
any 1 s and the shortest gap between two (the page draws each chart at most once a second).

`--full-history` then publishes a full 6 h history of the same number of displays (a window a
minute and four plays a minute each, timestamps in the past 6 h, as fast as the broker takes
it), waits until the dashboard has counted it, and reads the dashboard's RSS, the size of the
fleet's state and how long a page takes to open with it.

Prints a Markdown table and writes every number to `--json`. Exits 2 when Chromium, mosquitto
or playwright is missing, 1 when the load lost reports, a probe never reached the page, or a
wait ran out.

Needs Chromium ($EDGE_AGENT_CHROMIUM or `chromium` on PATH), mosquitto and the [dev] extra
(playwright).
Usage: scripts/bench_dashboard_web.py [--devices 100] [--seconds 120] [--full-history]
                                      [--json bench-dashboard-web.json] [--screenshot FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from mqtt_bench_support import (
    HOST,
    MachineCpu,
    Mosquitto,
    ProcessCpu,
    find_mosquitto,
    free_port,
    make_report,
    percentile,
)

from edge_agent.ads.players.chromium import HEADLESS_ARGS, find_chromium
from edge_agent.telemetry import payloads
from edge_agent.telemetry.topics import Leaf, Topics

SCRIPTS = Path(__file__).resolve().parent
PROBE_EVERY_S = 5  # one probe number every 5 samples (a sample a second)
PROBE_TIMEOUT_S = 10.0  # a probe number not on the page by then counts as failed
START_TIMEOUT_S = 20.0  # the dashboard serving, the page's first state
LOAD_SLACK_S = 90.0  # fleet_load's connects and drain on top of --seconds
HISTORY_TIMEOUT_S = 600.0  # the dashboard counting a full history
HISTORY_MINUTES = 6 * 60
PLAYS_PER_MINUTE = 4
# The probe's number lands in the page's "today" tile; the fleet's displays send no today
PROBE_CHECK = (
    "v => document.querySelector('#today-passers').textContent.replace(/,/g, '') === String(v)"
)


INTERRUPTED = threading.Event()
OVERTIME: list[float] = []  # the watchdog's limit, once it has fired


class Failed(Exception):
    """A wait ran out or a part died: one line for the user, exit 1."""


# --------------------------------------------------------------------------------------------
# The parts


@contextlib.contextmanager
def dashboard_process(broker_port: int, folder: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """`edge-agent dashboard --web` on a free port, its stderr in `folder`; stopped at the end."""
    port = free_port()
    log = folder / "dashboard.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_agent.cli",
                "dashboard",
                "--web",
                "--broker",
                f"{HOST}:{broker_port}",
                "--listen",
                f"{HOST}:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise Failed(f"the dashboard exited ({process.returncode}): {tail(log)}")
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    late = f"the dashboard did not serve within {START_TIMEOUT_S:.0f} s"
                    raise Failed(late) from None
                time.sleep(0.1)
        yield process, port
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL if it does not exit."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def tail(path: Path, limit: int = 300) -> str:
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return " | ".join(text[-limit:].splitlines())


@contextlib.contextmanager
def probe_client(broker_port: int) -> Iterator[mqtt.Client]:
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-dashboard-probe")
    client.on_connect = lambda *_: connected.set()
    client.connect(HOST, broker_port)
    client.loop_start()
    try:
        if not connected.wait(START_TIMEOUT_S):
            raise Failed("the probe client did not connect to the broker")
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_probe(client: mqtt.Client, value: int) -> float:
    """Today's passers-by = `value` for display probe/probe; returns the wall clock it left."""
    wall = time.time()
    message = payloads.audience_today(
        "probe",
        "probe",
        wall,
        date=dt.date.today(),
        passers_by=value,
        viewers=1,
        segments={},
        viewer_segments={},
    )
    topic = Topics("probe", "probe").topic(Leaf.AUDIENCE_TODAY)
    client.publish(topic, payloads.encode(message), qos=1)
    return wall


# --------------------------------------------------------------------------------------------
# Numbers


def most_in_one_second(times_ms: list[float]) -> int:
    """The most timestamps (ms, sorted) inside any window of 1 s."""
    best, start = 0, 0
    for end, t in enumerate(times_ms):
        while t - times_ms[start] >= 1000:
            start += 1
        best = max(best, end - start + 1)
    return best


def spread(values: list[float]) -> dict[str, float]:
    """n, median, p95 and max, nearest rank (mqtt_bench_support.percentile)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "max": ordered[-1],
    }


def collect_chart_updates(page: Any, seen: dict[str, set[float]]) -> None:
    """The page keeps each chart's last 200 draw times; gather them before they roll off."""
    for name, times in page.evaluate("window.dashboard.chartUpdates").items():
        seen.setdefault(name, set()).update(times)


# --------------------------------------------------------------------------------------------
# The load


def run_load(
    args: argparse.Namespace,
    broker: Mosquitto,
    dashboard: subprocess.Popen,
    page: Any,
    probe: mqtt.Client,
    folder: Path,
) -> dict[str, Any]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cpu = ProcessCpu(dashboard.pid)
    result: dict[str, Any] = {"rss_start_mb": cpu.memory_kb()["VmRSS"] / 1024}
    fleet_json, fleet_log = folder / "fleet.json", folder / "fleet.log"
    with open(fleet_log, "wb") as output:
        load = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPTS / "fleet_load.py"),
                *f"--devices {args.devices} --seconds {args.seconds} --processes 1".split(),
                *f"--broker {HOST}:{broker.port} --broker-pid {broker.pid}".split(),
                *["--out", str(fleet_json)],
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        rss, round_trips, latencies = [], [], []
        probes_failed = 0
        chart_updates: dict[str, set[float]] = {}
        cpu_start, started = cpu.seconds(), time.monotonic()
        deadline = started + args.seconds + LOAD_SLACK_S
        sample = 0
        while load.poll() is None:
            if time.monotonic() > deadline:
                raise Failed(f"fleet_load.py did not finish within {args.seconds + LOAD_SLACK_S} s")
            if dashboard.poll() is not None:
                raise Failed(f"the dashboard exited ({dashboard.returncode}) during the load")
            sample += 1
            rss.append(cpu.memory_kb()["VmRSS"] / 1024)
            before = time.perf_counter()
            page.evaluate("1")
            round_trips.append((time.perf_counter() - before) * 1000)
            if sample % PROBE_EVERY_S == 0:
                value = 1000 + sample
                wall = publish_probe(probe, value)
                try:
                    page.wait_for_function(
                        PROBE_CHECK, arg=value, timeout=PROBE_TIMEOUT_S * 1000, polling="raf"
                    )
                    latencies.append(time.time() - wall)
                except PlaywrightTimeout:  # counted, not fatal
                    probes_failed += 1
            if sample % 10 == 0:
                collect_chart_updates(page, chart_updates)
            time.sleep(1)
        elapsed = time.monotonic() - started
        result["cpu_percent"] = (cpu.seconds() - cpu_start) / elapsed * 100
    finally:
        stop_process(load)
    collect_chart_updates(page, chart_updates)
    memory = cpu.memory_kb()
    page_stats = page.evaluate(
        "({states: window.dashboard.states, received: window.dashboard.lastState.received,"
        " fleet: window.dashboard.lastState.fleet})"
    )
    if not fleet_json.exists():
        raise Failed(f"fleet_load.py wrote no result ({load.returncode}): {tail(fleet_log)}")
    fleet = json.loads(fleet_json.read_text())
    charts = {}
    for name, times in sorted(chart_updates.items()):
        ordered = sorted(times)
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        charts[name] = {
            "updates": len(ordered),
            "max_in_1_s": most_in_one_second(ordered),
            "min_gap_ms": min(gaps) if gaps else None,
        }
    result.update(
        seconds=elapsed,
        rss_samples_mb=rss,
        rss_peak_mb=max([*rss, memory["VmRSS"] / 1024]),
        rss_end_mb=memory["VmRSS"] / 1024,
        reports_sent=fleet["sent"],
        reports_delivered=fleet["delivered"],
        reports_missing=fleet["missing"],
        fleet_load_exit=load.returncode,
        page_states=page_stats["states"],
        dashboard_received=page_stats["received"],
        fleet_shown=page_stats["fleet"],
        charts=charts,
        probe_latency_s=spread(latencies),
        probe_latencies_s=latencies,
        probes_failed=probes_failed,
        page_round_trip_ms=spread(round_trips),
        fleet_load=fleet,
    )
    return result


# --------------------------------------------------------------------------------------------
# A full history


def history_messages(devices: int, now: float) -> Iterator[tuple[str, bytes]]:
    """6 h of a window a minute and PLAYS_PER_MINUTE plays a minute for each display."""
    import random

    from edge_agent.ads.values import PlayAudience, PlayEnd, PlayEvent

    rng = random.Random(7)
    audience = PlayAudience(3, 1, 2, 2.5, {"female/20-34": 2, "other": 1})
    for d in range(devices):
        site, device = f"history-{d // 10}", f"screen-{d:03d}"
        topics = Topics(site, device)
        for minute in range(HISTORY_MINUTES):
            end = now - (HISTORY_MINUTES - minute) * 60 + 1
            report = make_report(rng, end)
            yield (
                topics.topic(Leaf.AUDIENCE_REPORT),
                payloads.encode(payloads.audience_report(site, device, report)),
            )
            for k in range(PLAYS_PER_MINUTE):
                ended = end - k * 15
                creative = f"creative-{(minute * PLAYS_PER_MINUTE + k) % 8}"
                event = PlayEvent(
                    os.urandom(16).hex(),
                    creative,
                    "r",
                    "rule",
                    "x",
                    ended - 12,
                    ended,
                    12.0,
                    PlayEnd.COMPLETED,
                    audience,
                    "v",
                )
                yield (
                    topics.topic(Leaf.ADS_PLAY),
                    payloads.encode(payloads.ads_play(site, device, event)),
                )


def fetch_state(port: int) -> tuple[dict[str, Any], int]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/api/state?scope=", timeout=30) as answer:
        body = answer.read()
    return json.loads(body), len(body)


def run_full_history(
    args: argparse.Namespace, broker: Mosquitto, dashboard: subprocess.Popen, port: int, page: Any
) -> dict[str, Any]:
    received_before = fetch_state(port)[0]["received"]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-dashboard-history")
    client.max_inflight_messages_set(1000)
    client.connect(HOST, broker.port)
    client.loop_start()
    started = time.monotonic()
    deadline = started + HISTORY_TIMEOUT_S
    published = 0
    try:
        last = None
        for topic, body in history_messages(args.devices, time.time()):
            last = client.publish(topic, body, qos=1)
            published += 1
            if published % 2000 == 0:  # keep paho's queue (and this process) small
                last.wait_for_publish(max(1.0, deadline - time.monotonic()))
        if last is not None:
            last.wait_for_publish(max(1.0, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    published_s = time.monotonic() - started
    while True:
        state, size = fetch_state(port)
        if state["received"] - received_before >= published:
            break
        if time.monotonic() > deadline or dashboard.poll() is not None:
            got = state["received"] - received_before
            raise Failed(f"the dashboard counted {got} of {published} history messages in time")
        time.sleep(1)
    counted_s = time.monotonic() - started
    memory = ProcessCpu(dashboard.pid).memory_kb()
    opened = time.perf_counter()
    page.reload()
    page.wait_for_function(
        "window.dashboard && window.dashboard.states > 0", timeout=START_TIMEOUT_S * 1000
    )
    page_open_ms = (time.perf_counter() - opened) * 1000
    return {
        "messages": published,
        "published_s": published_s,
        "counted_s": counted_s,
        "rss_mb": memory["VmRSS"] / 1024,
        "rss_peak_mb": memory["VmHWM"] / 1024,
        "fleet_state_kb": size / 1024,
        "buckets": len(state["series"]["t"]),
        "creatives": len(state["creatives"]),
        "page_open_ms": page_open_ms,
    }


# --------------------------------------------------------------------------------------------
# Output


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def print_table(result: dict[str, Any]) -> None:
    load = result["load"]
    rows = [
        ("displays x reports a second, seconds", f"{result['devices']} x 1, {result['seconds']}"),
        (
            "dashboard RSS start / peak",
            f"{load['rss_start_mb']:.1f} / {load['rss_peak_mb']:.1f} MB",
        ),
        ("dashboard CPU", f"{load['cpu_percent']:.1f} % of a core"),
        (
            "reports sent / delivered (fleet_load's subscriber)",
            f"{load['reports_sent']} / {load['reports_delivered']}",
        ),
        ("messages the dashboard counted", str(load["dashboard_received"])),
        ("page states received", str(load["page_states"])),
    ]
    for name, chart in load["charts"].items():
        rows.append(
            (
                f"{name}: updates, most in any 1 s, min gap",
                f"{chart['updates']}, {chart['max_in_1_s']}, {fmt(chart['min_gap_ms'], ' ms', 0)}",
            )
        )
    probe = load["probe_latency_s"]
    rows.append(
        (
            "probe publish -> page: median / max, failed",
            f"{fmt(probe.get('median'), ' s', 2)} / {fmt(probe.get('max'), ' s', 2)}"
            f" (n={probe['n']}), {load['probes_failed']} failed",
        )
    )
    trip = load["page_round_trip_ms"]
    rows.append(
        (
            "page round trip median / p95 / max",
            f"{fmt(trip.get('median'))} / {fmt(trip.get('p95'))} / {fmt(trip.get('max'))} ms",
        )
    )
    history = result.get("full_history")
    if history:
        rows += [
            (
                "full history: messages, counted in",
                f"{history['messages']}, {history['counted_s']:.0f} s",
            ),
            (
                "full history: dashboard RSS / peak",
                f"{history['rss_mb']:.1f} / {history['rss_peak_mb']:.1f} MB",
            ),
            (
                "full history: fleet state, page open",
                f"{history['fleet_state_kb']:.0f} KB ({history['buckets']} buckets),"
                f" {history['page_open_ms']:.0f} ms",
            ),
        ]
    busy = result.get("machine_busy_cores")
    if busy is not None:
        rows.append(("machine busy, all processes", f"{busy:.2f} of {os.cpu_count()} cores"))
    print("\n| what | result |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100, help="simulated displays")
    parser.add_argument("--seconds", type=int, default=120, help="how long they publish")
    parser.add_argument(
        "--full-history", action="store_true", help="then publish 6 h of history and measure"
    )
    parser.add_argument("--json", type=Path, default=Path("bench-dashboard-web.json"))
    parser.add_argument("--screenshot", type=Path, help="a PNG of the page after the load")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.seconds < 1:
        parser.error("--devices and --seconds must be positive")

    chromium = find_chromium()
    if chromium is None:
        return missing("no Chromium: install chromium or set EDGE_AGENT_CHROMIUM")
    if find_mosquitto() is None:
        return missing("mosquitto not found (apt install mosquitto)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        return missing("playwright is not installed (pip install -e '.[dev]')")

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    result: dict[str, Any] = {
        "devices": args.devices,
        "seconds": args.seconds,
        "loadavg_before": os.getloadavg(),
    }
    machine = MachineCpu()
    # page.evaluate has no timeout of its own: a page that stops answering ends the run here
    limit_s = 4 * START_TIMEOUT_S + args.seconds + LOAD_SLACK_S
    limit_s += HISTORY_TIMEOUT_S + START_TIMEOUT_S if args.full_history else 0
    watchdog = threading.Timer(limit_s, overtime, (limit_s,))
    watchdog.daemon = True
    watchdog.start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-dashboard-web-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            folder = Path(tmp)
            broker = Mosquitto(folder, extra=("max_connections -1",)).start()
            stack.callback(broker.stop)
            dashboard, port = stack.enter_context(dashboard_process(broker.port, folder))
            probe = stack.enter_context(probe_client(broker.port))
            playwright = stack.enter_context(sync_playwright())
            browser = playwright.chromium.launch(executable_path=chromium, args=HEADLESS_ARGS)
            stack.callback(quietly, browser.close)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(START_TIMEOUT_S * 1000)
            page.goto(f"http://{HOST}:{port}/")
            page.wait_for_function("window.dashboard && window.dashboard.states > 0")
            print(
                f"{broker.version}, Chromium {browser.version}, {os.cpu_count()} CPUs;"
                f" {args.devices} displays for {args.seconds} s ...",
                flush=True,
            )
            result["load"] = run_load(args, broker, dashboard, page, probe, folder)
            if args.screenshot:
                page.screenshot(path=str(args.screenshot))
            if args.full_history:
                print("publishing 6 h of history ...", flush=True)
                result["full_history"] = run_full_history(args, broker, dashboard, port, page)
            result["chromium"] = browser.version
            result["broker_version"] = broker.version
    except KeyboardInterrupt:
        return stopped_early()
    except Failed as failure:
        print(f"bench_dashboard_web: {failure}", file=sys.stderr)
        return 1
    except PlaywrightError as error:
        if INTERRUPTED.is_set():  # Ctrl-C reached playwright's driver before this process
            return stopped_early()
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"bench_dashboard_web: the browser: {first_line}", file=sys.stderr)
        return 1
    finally:
        watchdog.cancel()
    machine.stop()
    result["machine_busy_cores"] = machine.busy_cores()
    result["loadavg_after"] = os.getloadavg()
    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    print_table(result)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}" + (f" and {args.screenshot}" if args.screenshot else ""))
    load = result["load"]
    lost = load["reports_delivered"] != load["reports_sent"] or load["reports_missing"]
    return 1 if lost or load["probes_failed"] else 0


def interrupt(signum: int, frame: object) -> None:
    """Ctrl-C and SIGTERM: out through main's `with`s, which stop every part."""
    INTERRUPTED.set()
    # playwright's driver, in this process group, may die of the Ctrl-C first: its lost
    # connection is expected now, not worth asyncio's "Future exception was never retrieved"
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    raise KeyboardInterrupt


def overtime(limit_s: float) -> None:
    """The watchdog (its own thread): out through main's `with`s, as SIGTERM does."""
    OVERTIME.append(limit_s)
    os.kill(os.getpid(), signal.SIGTERM)


def stopped_early() -> int:
    if OVERTIME:
        print(
            f"bench_dashboard_web: gave up after {OVERTIME[0]:.0f} s (a part stopped answering);"
            " dashboard, broker and browser stopped",
            file=sys.stderr,
        )
        return 1
    print("interrupted: dashboard, broker and browser stopped", file=sys.stderr)
    return 130


def quietly(close: Any) -> None:
    """Close a part that may already be gone (Ctrl-C reaches Chromium and its driver too)."""
    with contextlib.suppress(Exception):
        close()


def missing(message: str) -> int:
    print(f"bench_dashboard_web: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
