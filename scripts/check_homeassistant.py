"""Check Home Assistant discovery against a real Home Assistant, a real mosquitto and the daemon.

    .venv/bin/python scripts/check_homeassistant.py [--ha-venv DIR] [--json out.json]

What it does:
- installs Home Assistant (`--version`, from PyPI; 2024.3.3 is the newest that installs on
  Python 3.11) and the requirements of the integrations it loads into a venv of its own,
  `--ha-venv` (default ~/.cache/edge-agent/ha-<version>), reused when it is there;
- starts a mosquitto of its own and Home Assistant headless (`hass -c DIR`, a minimal
  configuration: `http` on a free port of 127.0.0.1, no `default_config`), onboards it over
  REST (a user, an auth code, a bearer token) and adds the MQTT integration through the REST
  config flow (`POST /api/config/config_entries/flow`), pointed at that mosquitto;
- runs `edge-agent run` on the looping demo footage against the same broker and checks over
  HA's REST API (`/api/states`, `/api/template` for the device registry):
  1. the device and every entity the daemon's discovery declares exist, with its units,
     device classes and state classes; how long that took from the daemon's start;
  2. every entity's state equals the field of the retained state message it reads;
  3. availability: entities available while the daemon is `online`, unavailable after SIGTERM
     (`stopped`) and after SIGKILL (`offline`, the broker's last will), available again after
     each restart;
  4. Home Assistant restarted with the retained discovery removed from the broker meanwhile,
     so only its birth message (`homeassistant/status` `online`) can bring discovery back:
     entities and states return; how long that took from HA's start.
Prints a PASS/FAIL table; `--json` writes the numbers. Exit 0 when every check passes, 1 when
one fails, 2 when something it needs is missing (mosquitto, PyPI, Home Assistant not starting).
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
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from mqtt_bench_support import HOST, Mosquitto, demo_daemon_environ, free_port
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
# Home Assistant 2024.4 and later need Python 3.12; this is the last release for 3.11.
HA_VERSION = "2024.3.3"
SITE, DEVICE = "ha-check", "screen"
PREFIX = "homeassistant"
# Set up by every Home Assistant without recovery mode (bootstrap.DEFAULT_INTEGRATIONS), plus
# what this check configures or adds: their requirements are installed with HA, not at start.
LOADED = (
    "application_credentials",
    "backup",
    "frontend",
    "hardware",
    "logger",
    "network",
    "system_health",
    "automation",
    "person",
    "scene",
    "script",
    "tag",
    "zone",
    "counter",
    "input_boolean",
    "input_button",
    "input_datetime",
    "input_number",
    "input_select",
    "input_text",
    "schedule",
    "timer",
    "http",
    "api",
    "config",
    "onboarding",
    "mqtt",
    "sensor",
    "websocket_api",
    "auth",
)
USER, PASSWORD = "check", "check-password-0"


class Missing(Exception):
    """Something the check needs is not there; exit 2 with this message."""


def deadline_loop(timeout: float, step: float = 0.5) -> Any:
    """Yields until `timeout` seconds have passed, sleeping `step` between."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        yield
        time.sleep(step)


# --------------------------------------------------------------------------------------------
# Installing Home Assistant


def default_venv(version: str) -> Path:
    return Path.home() / ".cache" / "edge-agent" / f"ha-{version}"


def pip(venv: Path, *arguments: str, timeout: float = 1200) -> None:
    try:
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise Missing(
            f"pip install {' '.join(arguments)} took too long: is PyPI reachable?"
        ) from error
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        last = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Missing(f"pip install {' '.join(arguments)} failed: {last}")


def installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "from homeassistant.const import __version__; print(__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def integration_requirements(venv: Path, domains: list[str]) -> list[str]:
    """The pip requirements of `domains` and everything they depend on, from their manifests."""
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    components = site_packages / "homeassistant" / "components"
    requirements: list[str] = []
    seen: set[str] = set()
    todo = list(domains)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = json.loads((components / domain / "manifest.json").read_text())
        requirements += manifest.get("requirements", [])
        todo += manifest.get("dependencies", [])
    return sorted(set(requirements))


def install_home_assistant(venv: Path, version: str) -> float:
    """Home Assistant `version` in `venv`; seconds the install took (0 when reused)."""
    if installed_version(venv) == version and (venv / ".requirements-done").exists():
        return 0.0
    began = time.monotonic()
    print(f"installing homeassistant=={version} from PyPI into {venv} ...", flush=True)
    if installed_version(venv) != version:
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        pip(venv, "--upgrade", "pip", "wheel")
        # acme 2.8 (hass-nabucasa's, imported by `http`) fails to import with josepy 2.
        pip(venv, f"homeassistant=={version}", "josepy<2")
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    constraints = site_packages / "homeassistant" / "package_constraints.txt"
    pip(venv, "-c", str(constraints), *integration_requirements(venv, LOADED))
    (venv / ".requirements-done").write_text(version + "\n")
    return time.monotonic() - began


# --------------------------------------------------------------------------------------------
# Home Assistant, headless


CONFIGURATION = """\
homeassistant:
  name: edge-agent check
  unit_system: metric
  time_zone: UTC
  latitude: 0
  longitude: 0
  elevation: 0
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""


class HomeAssistant:
    def __init__(self, venv: Path, config_dir: Path) -> None:
        self.venv, self.config_dir = venv, config_dir
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        self.log_path = config_dir / "hass.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.token: str | None = None

    def start(self, timeout: float = 240.0) -> float:
        """Start it; seconds until its HTTP API answers."""
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "hass"), "-c", str(self.config_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the check, which stops HA cleanly
            )
        for _ in deadline_loop(timeout):
            if self.process.poll() is not None:
                raise Missing(f"Home Assistant exited: {self.log()[-1500:]}")
            # Answers without a token, before and after onboarding.
            if self.request("GET", "/api/onboarding", auth=False)[0] == 200:
                return time.monotonic() - began
        raise Missing(f"Home Assistant did not answer within {timeout:.0f} s: {self.log()[-1500:]}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        form: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or None); status 0 when it does not answer."""
        headers: dict[str, str] = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                raw = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        except (OSError, urllib.error.URLError):
            return 0, None
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def expect(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = self.request(method, path, body, **kwargs)
        if status not in (200, 201):
            raise Missing(f"Home Assistant {method} {path}: HTTP {status} {answer}")
        return answer

    def onboard(self) -> None:
        """A user, its auth code, a bearer token (REST onboarding, as the frontend does it)."""
        client_id = self.base + "/"
        user = self.expect(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Check",
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
            auth=False,
        )
        form = {"grant_type": "authorization_code", "code": user["auth_code"]}
        token = self.expect(
            "POST", "/auth/token", form={**form, "client_id": client_id}, auth=False
        )
        self.token = token["access_token"]

    def login(self) -> None:
        """A new token after a restart: the login flow with the user made at onboarding."""
        client_id = self.base + "/"
        flow = self.expect(
            "POST",
            "/auth/login_flow",
            {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
            auth=False,
        )
        done = self.expect(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": client_id, "username": USER, "password": PASSWORD},
            auth=False,
        )
        form = {"grant_type": "authorization_code", "code": done["result"]}
        token = self.expect(
            "POST", "/auth/token", form={**form, "client_id": client_id}, auth=False
        )
        self.token = token["access_token"]

    def add_mqtt(self, broker_port: int, timeout: float = 60.0) -> None:
        """The MQTT integration through the REST config flow; returns once it is loaded."""
        flow = self.expect("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        if flow.get("step_id") != "broker":
            raise Missing(f"the MQTT config flow did not ask for the broker: {flow}")
        done = self.expect(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": HOST, "port": broker_port},
            timeout=60,  # HA connects to the broker to try it before it answers
        )
        if done.get("type") != "create_entry":
            raise Missing(f"the MQTT config flow did not create an entry: {done}")
        self.wait_mqtt_loaded(timeout)

    def wait_mqtt_loaded(self, timeout: float = 60.0) -> None:
        for _ in deadline_loop(timeout):
            _, entries = self.request("GET", "/api/config/config_entries/entry?domain=mqtt")
            if entries and entries[0].get("state") == "loaded":
                return
        raise Missing(f"the MQTT integration did not load within {timeout:.0f} s")

    def states(self) -> dict[str, dict[str, Any]]:
        status, answer = self.request("GET", "/api/states")
        return {s["entity_id"]: s for s in answer} if status == 200 else {}

    def template(self, template: str) -> str | None:
        status, answer = self.request("POST", "/api/template", {"template": template})
        # The answer is text; request() decoded it as JSON where it could ("21" -> 21).
        return None if status != 200 or answer is None else str(answer)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# --------------------------------------------------------------------------------------------
# What the daemon publishes, as a subscriber of its own sees it


@dataclass(frozen=True)
class Entity:
    """One sensor the daemon's discovery declares."""

    unique_id: str
    friendly_name: str
    state_topic: str
    value_template: str
    unit: str | None
    device_class: str | None
    state_class: str | None


class Broker:
    """The retained discovery and state messages on the broker, newest first."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.retained: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ha-check")
        topics = [(f"{PREFIX}/#", 1), (f"edge-agent/{SITE}/{DEVICE}/#", 1)]
        self.client.on_connect = lambda client, *_: client.subscribe(topics)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise Missing("could not subscribe to the check's own mosquitto")

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            if message.payload:
                self.retained[message.topic] = message.payload
            else:
                self.retained.pop(message.topic, None)

    def payload(self, topic: str) -> dict[str, Any] | None:
        with self.lock:
            raw = self.retained.get(topic)
        return json.loads(raw) if raw else None

    def discovery_topics(self) -> list[str]:
        with self.lock:
            return [
                t for t in self.retained if t.startswith(f"{PREFIX}/") and t.endswith("/config")
            ]

    def entities(self) -> tuple[str | None, list[Entity]]:
        """(device name, sensors) from the discovery on the broker: device-based discovery
        (one message, `cmps`) or one message per sensor, whichever the daemon sends."""
        device_name, found = None, []
        for topic in self.discovery_topics():
            payload = self.payload(topic) or {}
            device_name = (payload.get("dev") or payload.get("device") or {}).get("name")
            components = payload.get("cmps") or {"": payload}
            for component in components.values():
                found.append(
                    Entity(
                        component["unique_id"],
                        f"{device_name} {component['name']}",
                        component["state_topic"],
                        component["value_template"],
                        component.get("unit_of_measurement"),
                        component.get("device_class"),
                        component.get("state_class"),
                    )
                )
        return device_name, sorted(found, key=lambda e: e.unique_id)

    def clear_discovery(self) -> list[str]:
        """Remove the retained discovery from the broker (an empty retained message each)."""
        topics = self.discovery_topics()
        for topic in topics:
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        return topics

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def expected_state(entity: Entity, payload: dict[str, Any] | None) -> str | None:
    """What Home Assistant should show for `entity` given its state message (None: unknown)."""
    if payload is None:
        return None
    field = entity.value_template.split("value_json.")[1].split()[0].split("|")[0].strip(" }")
    value = payload.get(field, 0 if "default(0)" in entity.value_template else None)
    return None if value is None else str(value)


def same_state(entity: Entity, shown: str, expected: str | None) -> bool:
    if expected is None:
        return shown == "unknown"
    if entity.unit is not None:
        try:
            return abs(float(shown) - float(expected)) < 1e-6
        except ValueError:
            return False
    return shown == expected


# --------------------------------------------------------------------------------------------
# The daemon


class Daemon:
    def __init__(self, broker_port: int, state: Path, window_s: float) -> None:
        self.environ = demo_daemon_environ(REPO, broker_port, state, window_s, SITE, DEVICE)
        self.log_path = state.parent / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "run"],
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise Missing(f"edge-agent run exited: {log[-1500:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)


# --------------------------------------------------------------------------------------------
# The checks


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def wait_for(condition: Callable[[], Any], timeout: float, step: float = 0.5) -> Any:
    """The first truthy result of `condition` within `timeout` seconds, else the last one."""
    result = None
    for _ in deadline_loop(timeout, step):
        result = condition()
        if result:
            return result
    return result


def by_name(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["attributes"].get("friendly_name"): s for s in states.values()}


def present(ha: HomeAssistant, entities: list[Entity]) -> dict[str, dict[str, Any]] | None:
    """The HA state of each expected entity, by unique id, when every one exists and is
    available (not restored from before a restart); None otherwise."""
    if not entities:
        return None
    shown = by_name(ha.states())
    found = {}
    for entity in entities:
        state = shown.get(entity.friendly_name)
        if state is None or state["state"] == "unavailable" or state["attributes"].get("restored"):
            return None
        found[entity.unique_id] = state
    return found


def mismatches(ha: HomeAssistant, broker: Broker, entities: list[Entity]) -> list[str]:
    shown = by_name(ha.states())
    wrong = []
    for entity in entities:
        state = shown.get(entity.friendly_name)
        expected = expected_state(entity, broker.payload(entity.state_topic))
        if state is None or not same_state(entity, state["state"], expected):
            got = None if state is None else state["state"]
            wrong.append(f"{entity.unique_id}: HA {got!r}, broker {expected!r}")
    return wrong


def attribute_problems(states: dict[str, dict[str, Any]], entities: list[Entity]) -> list[str]:
    wrong = []
    for entity in entities:
        attributes = states[entity.unique_id]["attributes"]
        for key, declared in (
            ("unit_of_measurement", entity.unit),
            ("device_class", entity.device_class),
            ("state_class", entity.state_class),
        ):
            if attributes.get(key) != declared:
                wrong.append(f"{entity.unique_id}: {key} {attributes.get(key)!r} != {declared!r}")
    return wrong


def all_unavailable(ha: HomeAssistant, entities: list[Entity]) -> bool:
    shown = by_name(ha.states())
    return all(shown.get(e.friendly_name, {}).get("state") == "unavailable" for e in entities)


def availability_state(broker: Broker) -> str | None:
    payload = broker.payload(f"edge-agent/{SITE}/{DEVICE}/availability") or {}
    return payload.get("state")


def run_checks(
    ha: HomeAssistant, broker: Broker, daemon: Daemon, timeout: float
) -> tuple[list[Check], dict[str, Any]]:
    checks: list[Check] = []
    numbers: dict[str, Any] = {}

    began = time.monotonic()
    daemon.start()
    # 1. Discovery: the device and its entities.
    device_name, entities = wait_for(lambda: broker.entities()[1] and broker.entities(), 60) or (
        None,
        [],
    )
    daemon.check_alive()
    states = wait_for(lambda: present(ha, entities), timeout)
    numbers["discovery_s"] = round(time.monotonic() - began, 1) if states else None
    numbers["entities"] = [
        {
            "entity_id": states[e.unique_id]["entity_id"] if states else None,
            "unique_id": e.unique_id,
            "unit": e.unit,
            "device_class": e.device_class,
            "state_class": e.state_class,
        }
        for e in entities
    ]
    checks.append(
        Check(
            "every discovered entity exists",
            bool(states),
            f"{len(entities)} declared; {'all' if states else 'not all'} in HA"
            + (f" after {numbers['discovery_s']} s" if states else ""),
        )
    )
    if not states:
        numbers["ha_log_mqtt"] = [line for line in ha.log().splitlines() if "mqtt" in line.lower()][
            -10:
        ]
        return checks, numbers
    some_entity = next(iter(states.values()))["entity_id"]
    device = {
        key: ha.template(f"{{{{ device_attr(device_id('{some_entity}'), '{key}') }}}}")
        for key in ("name", "manufacturer", "model", "sw_version")
    }
    on_device = ha.template(f"{{{{ device_entities(device_id('{some_entity}')) | count }}}}")
    numbers["device"] = device
    checks.append(
        Check(
            "the device holds them all",
            device["name"] == device_name and on_device == str(len(entities)),
            f"{device['name']!r} ({device['manufacturer']}, {device['model']}, "
            f"sw {device['sw_version']}): {on_device} entities",
        )
    )
    wrong = attribute_problems(states, entities)
    checks.append(
        Check("units, device and state classes", not wrong, "; ".join(wrong) or "as declared")
    )

    # 2. States equal the retained messages, once a window with people in it has closed (so
    # the counts compared are not all 0).
    today_topic = f"edge-agent/{SITE}/{DEVICE}/audience/today"
    wait_for(lambda: (broker.payload(today_topic) or {}).get("passers_by", 0) > 0, 90)
    today = broker.payload(today_topic) or {}
    numbers["compared_today"] = {k: today.get(k) for k in ("passers_by", "viewers")}
    wrong = wait_for(lambda: not mismatches(ha, broker, entities), 15) and []
    wrong = [] if wrong == [] else mismatches(ha, broker, entities)
    checks.append(
        Check(
            "states equal the published values",
            not wrong and bool(today.get("passers_by")),
            "; ".join(wrong[:4]) or f"all equal (today: {numbers['compared_today']})",
        )
    )

    # 3. Availability.
    code = daemon.stop(signal.SIGTERM)
    stopped = wait_for(lambda: availability_state(broker) == "stopped", 15)
    gone = wait_for(lambda: all_unavailable(ha, entities), 15)
    checks.append(
        Check(
            "SIGTERM: 'stopped' -> unavailable",
            bool(stopped and gone),
            f"exit {code}, availability {availability_state(broker)!r}",
        )
    )
    daemon.start()
    back = wait_for(lambda: present(ha, entities), 60)
    checks.append(
        Check(
            "restart: 'online' -> available",
            bool(back) and availability_state(broker) == "online",
            f"availability {availability_state(broker)!r}",
        )
    )
    daemon.stop(signal.SIGKILL)
    will = wait_for(lambda: availability_state(broker) == "offline", 15)
    gone = wait_for(lambda: all_unavailable(ha, entities), 15)
    checks.append(
        Check(
            "SIGKILL: last will 'offline' -> unavailable",
            bool(will and gone),
            f"availability {availability_state(broker)!r}",
        )
    )
    daemon.start()
    back = wait_for(lambda: present(ha, entities), 60)
    checks.append(Check("restart again -> available", bool(back), ""))

    # 4. HA restart; only the birth message can bring discovery back.
    ha.stop()
    cleared = broker.clear_discovery()
    began = time.monotonic()
    ha.start()
    ha.login()
    ha.wait_mqtt_loaded()
    back = wait_for(lambda: present(ha, entities), timeout)
    numbers["recovery_s"] = round(time.monotonic() - began, 1) if back else None
    rediscovered = len(broker.discovery_topics())
    checks.append(
        Check(
            "HA restart: birth message -> discovery back",
            bool(back) and rediscovered == len(cleared),
            f"{len(cleared)} retained discovery messages removed while HA was down, "
            f"{rediscovered} sent again; entities back "
            + (f"{numbers['recovery_s']} s after HA's start" if back else "never"),
        )
    )
    wrong = wait_for(lambda: not mismatches(ha, broker, entities), 15) and []
    wrong = [] if wrong == [] else mismatches(ha, broker, entities)
    checks.append(Check("states after the restart", not wrong, "; ".join(wrong[:4]) or "all equal"))
    daemon.stop(signal.SIGTERM)
    return checks, numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ha-venv", type=Path, help="install/reuse Home Assistant here")
    parser.add_argument("--version", default=HA_VERSION, help="homeassistant version from PyPI")
    parser.add_argument("--window-s", type=float, default=5.0, help="audience window")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="longest wait for discovery")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs when it passes")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="edge-agent-ha-"))
    mosquitto = ha = broker = daemon = None
    checks: list[Check] = []
    numbers: dict[str, Any] = {}
    interrupted = False
    # SIGTERM as Ctrl-C: the finally below stops HA, the daemon and mosquitto either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        venv = args.ha_venv or default_venv(args.version)
        install_s = install_home_assistant(venv, args.version)
        try:
            mosquitto = Mosquitto(folder).start()
        except SystemExit as error:  # no mosquitto, or it did not start
            raise Missing(str(error)) from None
        ha = HomeAssistant(venv, folder / "ha")
        start_s = ha.start()
        ha.onboard()
        ha.add_mqtt(mosquitto.port)
        broker = Broker(mosquitto.port)
        daemon = Daemon(mosquitto.port, folder / "state", args.window_s)
        checks, numbers = run_checks(ha, broker, daemon, args.timeout_s)
    except Missing as problem:
        print(f"check_homeassistant: {problem} (logs kept in {folder})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("check_homeassistant: interrupted", file=sys.stderr)
        interrupted = True
        return 2
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave HA or the daemon running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for part in (daemon, broker, ha, mosquitto):
            if part is not None:
                (part.close if isinstance(part, Broker) else part.stop)()
        if interrupted:
            shutil.rmtree(folder, ignore_errors=True)

    passed = bool(checks) and all(c.passed for c in checks)
    if passed and not args.keep_logs:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"logs of HA, the daemon and mosquitto are in {folder}", file=sys.stderr)
    result = {
        "homeassistant_version": args.version,
        "python": sys.version.split()[0],
        "mosquitto": mosquitto.version,
        "install_s": round(install_s, 1),
        "ha_first_start_s": round(start_s, 1),
        **numbers,
        "checks": [c.__dict__ for c in checks],
        "passed": passed,
    }
    print(f"Home Assistant {args.version} on Python {result['python']}, {mosquitto.version}")
    if install_s:
        print(f"installed in {install_s:.0f} s")
    print(f"HA answered {start_s:.1f} s after its first start")
    print("| check | result | detail |")
    print("| --- | --- | --- |")
    for check in checks:
        print(f"| {check.name} | {'PASS' if check.passed else 'FAIL'} | {check.detail} |")
    print("\n| entity | unit | device class | state class |")
    print("| --- | --- | --- | --- |")
    for entity in numbers.get("entities", []):
        print(
            f"| {entity['entity_id'] or entity['unique_id']} | {entity['unit'] or '-'} "
            f"| {entity['device_class'] or '-'} | {entity['state_class'] or '-'} |"
        )
    for line in numbers.get("ha_log_mqtt", []):
        print(f"HA log: {line}")
    print("PASS" if passed else "FAIL")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
