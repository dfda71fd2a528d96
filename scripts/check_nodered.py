"""Check the documented Node-RED flow against a real Node-RED, a real mosquitto and the daemon.

    .venv/bin/python scripts/check_nodered.py [--node-red-dir DIR] [--run-s 25] [--json out.json]

What it does: installs Node-RED (`--version`, from npm) into `--node-red-dir` unless it is
already there; starts a mosquitto of its own and Node-RED with `docs/node-red/edge-agent-flow.json`
(its broker node pointed at that mosquitto); runs `edge-agent run` on the demo footage with a
short audience window for `--run-s` seconds; publishes one report a second time (QoS 1 may
deliver twice); then reads the flow's `GET /edge-agent/audience` and compares its totals with
the reports a subscriber of its own received. Passes (exit 0) when they are equal; prints a
table and writes the numbers with `--json`. Exit 1 when they differ, 2 when something it needs
is missing (node, npm, mosquitto, an npm registry).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from mqtt_bench_support import HOST, Mosquitto, demo_daemon_environ, free_port
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
FLOW = REPO / "docs" / "node-red" / "edge-agent-flow.json"
# The newest Node-RED that runs on Debian Bookworm's Node.js 18 (Node-RED 5 needs Node 22).
NODE_RED_VERSION = "4.1.8"
MIN_NODE = (18, 5)
SITE, DEVICE = "nodered-check", "screen"
ENDPOINT = "/edge-agent/audience"


class Missing(Exception):
    """Something the check needs is not there; exit 2 with this message."""


def node_version() -> tuple[int, int]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None or shutil.which("npm") is None:
        raise Missing("node and npm are needed: apt-get install -y nodejs npm")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    major, minor = (int(part) for part in out.strip().lstrip("v").split(".")[:2])
    if (major, minor) < MIN_NODE:
        raise Missing(f"Node.js {out.strip()} is too old for Node-RED 4 (needs 18.5 or newer)")
    return major, minor


def install_node_red(folder: Path, version: str) -> Path:
    """node_modules/node-red in `folder`, installed from npm if it is not there yet."""
    red = folder / "node_modules" / "node-red"
    installed = red / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == version:
        return red
    folder.mkdir(parents=True, exist_ok=True)
    print(f"installing node-red@{version} from npm into {folder} ...", flush=True)
    try:
        done = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"node-red@{version}",
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired as error:
        raise Missing(
            "npm install node-red took over 10 minutes: is the registry reachable?"
        ) from error
    if done.returncode != 0:
        raise Missing(f"npm install node-red@{version} failed: {done.stderr.strip()[-800:]}")
    return red


def flow_for(port: int) -> list[dict[str, Any]]:
    """The documented flow with its broker node pointed at 127.0.0.1:`port`."""
    flow = json.loads(FLOW.read_text())
    for node in flow:
        if node["type"] == "mqtt-broker":
            node["broker"], node["port"] = HOST, str(port)
    return flow


class NodeRed:
    def __init__(self, red: Path, user_dir: Path, broker_port: int) -> None:
        self.red, self.user_dir = red, user_dir
        self.port = free_port()
        user_dir.mkdir(parents=True, exist_ok=True)
        (user_dir / "flows.json").write_text(json.dumps(flow_for(broker_port)))
        self.log_path = user_dir / "node-red.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> str:
        return str(json.loads((self.red / "package.json").read_text())["version"])

    def start(self, timeout: float = 90.0) -> float:
        """Start it; seconds until its flow answers over HTTP and its MQTT node is connected."""
        began = time.monotonic()
        node = shutil.which("node") or shutil.which("nodejs") or "node"
        command = [node, str(self.red / "red.js"), "--userDir", str(self.user_dir)]
        command += ["--port", str(self.port), "flows.json"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise Missing(f"Node-RED exited: {self.log()[-1500:]}")
            if "Connected to broker" in self.log() and self.totals() is not None:
                return time.monotonic() - began
            time.sleep(0.25)
        raise Missing(f"Node-RED was not ready within {timeout:.0f} s: {self.log()[-1500:]}")

    def totals(self) -> dict[str, Any] | None:
        """What the flow's HTTP endpoint answers; None while it does not answer."""
        url = f"http://{HOST}:{self.port}{ENDPOINT}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, urllib.error.URLError, json.JSONDecodeError):
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Reports:
    """Every audience report on the broker, once per id, as a subscriber of its own sees them."""

    def __init__(self, port: int) -> None:
        self.topic = f"edge-agent/{SITE}/{DEVICE}/audience/report"
        self.by_id: dict[str, dict[str, Any]] = {}
        self.raw: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="nodered-check")
        self.client.on_connect = lambda client, *_: client.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise Missing("could not subscribe to the check's own mosquitto")

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        with self.lock:
            self.by_id[payload["id"]] = payload
            self.raw.setdefault(payload["id"], message.payload)

    def publish_again(self) -> str | None:
        """Publish the first report a second time, as a QoS 1 redelivery would; its id."""
        with self.lock:
            if not self.raw:
                return None
            report_id, payload = next(iter(self.raw.items()))
        self.client.publish(self.topic, payload, qos=1).wait_for_publish(10)
        return report_id

    def expected(self) -> dict[str, Any]:
        with self.lock:
            reports = list(self.by_id.values())
        segments: dict[str, int] = {}
        for report in reports:
            for name, value in report.items():
                if name.startswith("passers_by_"):
                    segment = name.removeprefix("passers_by_")
                    segments[segment] = segments.get(segment, 0) + int(value)
        return {
            "windows": len(reports),
            "passers_by": sum(int(r["passers_by"]) for r in reports),
            "viewers": sum(int(r["viewers"]) for r in reports),
            "segments": segments,
        }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_daemon(broker_port: int, state: Path, run_s: float, window_s: float) -> int:
    """`edge-agent run` on the looping demo footage for `run_s` seconds; its exit code."""
    environ = demo_daemon_environ(REPO, broker_port, state, window_s, SITE, DEVICE)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        daemon.wait(run_s)
        error = daemon.stderr.read().decode(errors="replace") if daemon.stderr else ""
        raise Missing(f"edge-agent run exited early: {error[-1500:]}")
    except subprocess.TimeoutExpired:
        pass
    daemon.send_signal(signal.SIGTERM)  # it closes the open window and sends it before exiting
    try:
        return daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        return daemon.wait(5)


def compare(expected: dict[str, Any], got: dict[str, Any] | None) -> dict[str, Any] | None:
    """The flow's totals for the check's display, when they equal the expected ones."""
    display = ((got or {}).get("displays") or {}).get(f"{SITE}/{DEVICE}")
    if not display:
        return None
    seen = {key: display.get(key) for key in ("windows", "passers_by", "viewers", "segments")}
    return seen if seen == expected else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-red-dir", type=Path, help="install/reuse Node-RED here")
    parser.add_argument("--version", default=NODE_RED_VERSION, help="Node-RED version from npm")
    parser.add_argument("--run-s", type=float, default=25.0, help="seconds the daemon runs")
    parser.add_argument("--window-s", type=float, default=5.0, help="audience window")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="edge-agent-nodered-"))
    broker = node_red = reports = None
    try:
        node = node_version()
        red = install_node_red(args.node_red_dir or folder / "node-red", args.version)
        broker = Mosquitto(folder).start()
        node_red = NodeRed(red, folder / "user", broker.port)
        ready_s = node_red.start()
        reports = Reports(broker.port)
        exit_code = run_daemon(broker.port, folder / "state", args.run_s, args.window_s)
        duplicate = reports.publish_again()
        # The daemon's last window may still be on its way to both subscribers.
        deadline = time.monotonic() + 15
        seen = None
        while seen is None and time.monotonic() < deadline:
            time.sleep(0.25)
            expected = reports.expected()
            seen = compare(expected, node_red.totals())
        last = node_red.totals()
    except Missing as problem:
        print(f"check_nodered: {problem}", file=sys.stderr)
        return 2
    finally:
        for part in (reports, node_red, broker):
            if part is not None:
                (part.close if isinstance(part, Reports) else part.stop)()
        shutil.rmtree(folder, ignore_errors=True)

    passed = seen is not None and int(expected["windows"]) >= 2 and exit_code == 0
    result = {
        "node_red_version": args.version,
        "node_version": ".".join(map(str, node)),
        "mosquitto": broker.version,
        "node_red_ready_s": round(ready_s, 1),
        "daemon_exit_code": exit_code,
        "reports_received": expected["windows"],
        "duplicate_published": duplicate,
        "expected": expected,
        "flow_answered": ((last or {}).get("displays") or {}).get(f"{SITE}/{DEVICE}"),
        "passed": passed,
    }
    flow_answer = result["flow_answered"] or {}
    print(f"Node-RED {args.version} on Node.js {result['node_version']}, {broker.version}")
    print(f"Node-RED ready (flow answering, MQTT connected) after {ready_s:.1f} s")
    print("| measure | subscriber | Node-RED flow |")
    print("| --- | ---: | ---: |")
    for key in ("windows", "passers_by", "viewers"):
        print(f"| {key} | {expected[key]} | {flow_answer.get(key, '-')} |")
    print(f"| segments | {expected['segments']} | {flow_answer.get('segments', '-')} |")
    print(f"one report published twice (id {duplicate}): counted once: {passed}")
    print("PASS" if passed else "FAIL: the flow's totals differ from the reports on the broker")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
