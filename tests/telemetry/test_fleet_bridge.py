"""docs/fleet.md's mosquitto recipes, run for real between two mosquitto brokers.

- The central broker is the doc's `<!-- central-config -->` file (TLS, passwords) with its
  `<!-- acl-file -->` ACL.
- The bridge block (`<!-- bridge-config -->`) runs on a "display" broker set up as the
  installer's --with-mosquitto leaves it (systemd/mosquitto-edge-agent.conf) and bridges over
  TLS with the display's own credentials. The real telemetry stage publishes to the display's
  broker, as the daemon does in topology B; what it publishes must arrive centrally, also what
  was published while the central broker was down (the bridge queues it), and the bridge's
  retained state on the central broker must end up "1".
- The ACL on its own: a display writes its own topics and nothing else, reads nothing of the
  others; a read-only consumer cannot write.

Only what cannot be the same here is replaced: addresses and ports, certificate and password
files, the password, and `restart_timeout` (shortened so the test does not wait for the
production back-off). amqtt cannot bridge, so these tests need mosquitto: they skip without
it, and fail with EDGE_AGENT_REQUIRE_MOSQUITTO=1 (as in CI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.telemetry.homeassistant import discovery_topic
from edge_agent.telemetry.stage import TelemetryStage
from edge_agent.telemetry.topics import Leaf, Topics
from tests.support.mqtt_broker import (
    HOST,
    BrokerUnavailable,
    Collector,
    MosquittoBroker,
    chosen_broker_kind,
    publish,
    skip_or_fail,
)
from tests.support.paths import REPO
from tests.support.polling import wait_until
from tests.support.telemetry import report

FLEET_DOC = REPO / "docs" / "fleet.md"
INSTALLER_MOSQUITTO_CONF = REPO / "systemd" / "mosquitto-edge-agent.conf"
SITE, DEVICE = "berlin-mitte", "door-left"  # the display the doc's examples are written for
DISPLAY_USER = f"{SITE}/{DEVICE}"
OTHER_USER = f"{SITE}/door-right"
TOPICS = Topics(SITE, DEVICE)
T0 = 1_795_000_000.0
QUEUED = 5  # reports published while the central broker is down


def doc_block(marker: str) -> str:
    """The fenced block that follows `<!-- marker -->` in docs/fleet.md."""
    text = FLEET_DOC.read_text()
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```[^\n]*\n(.*?)\n```", text, re.S)
    assert match, f"docs/fleet.md has no fenced block after <!-- {marker} -->"
    return match.group(1) + "\n"


def set_option(config: str, option: str, value: str) -> str:
    """Replace the value of one mosquitto option line, which must be there exactly once."""
    pattern = re.compile(rf"^{re.escape(option)} .*$", re.M)
    assert len(pattern.findall(config)) == 1, f"expected one '{option}' line in the doc's block"
    return pattern.sub(lambda _: f"{option} {value}", config)


def need_mosquitto() -> None:
    try:
        kind = chosen_broker_kind()
    except BrokerUnavailable as error:
        skip_or_fail(error)
    if kind != "mosquitto":
        skip_or_fail(BrokerUnavailable(f"{kind} cannot bridge; these tests need mosquitto"))


class CentralBroker(MosquittoBroker):
    """The doc's central broker: its conf.d file and ACL file, with this test's port,
    certificate (trustme, from tests/support/mqtt_broker.py) and password file. TLS only."""

    def __init__(self, workdir: Path, **options) -> None:
        super().__init__(workdir, tls=True, **options)

    @property
    def ports(self) -> list[int]:
        assert self.tls_port is not None
        return [self.tls_port]

    def _write_config(self) -> list[str]:
        acl_file = self.workdir / "acl"
        acl_file.write_text(doc_block("acl-file"))
        central = doc_block("central-config")
        central = set_option(central, "listener", f"{self.tls_port} {HOST}")
        central = set_option(central, "certfile", str(self.server_cert_file))
        central = set_option(central, "keyfile", str(self.server_key_file))
        central = set_option(central, "password_file", str(self.password_file))
        central = set_option(central, "acl_file", str(acl_file))
        lines = [
            # What Debian's /etc/mosquitto/mosquitto.conf adds: persistence (and a log).
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # see MosquittoBroker: pytest's folders are 0700
        self.config_file.write_text("\n".join(lines) + "\n" + central)
        return [self.executable, "-c", str(self.config_file)]


class DisplayBroker(MosquittoBroker):
    """The display's mosquitto as installed: Debian's main file (persistence), the installer's
    conf.d/edge-agent.conf (its loopback listener moved to a free port) and the bridge file."""

    def __init__(self, workdir: Path, bridge: str) -> None:
        self.bridge = bridge
        super().__init__(workdir)

    def _write_config(self) -> list[str]:
        lines = [
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_file}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # see MosquittoBroker: pytest's folders are 0700
        if INSTALLER_MOSQUITTO_CONF.exists():
            installed = INSTALLER_MOSQUITTO_CONF.read_text()
            listener = f"listener {self.port} {HOST}"
            lines.append(re.sub(r"^listener .*$", listener, installed, count=1, flags=re.M))
        else:  # what the installer's file provides, should it move
            lines += [f"listener {self.port} {HOST}", "allow_anonymous true"]
        self.config_file.write_text("\n".join(lines) + "\n" + self.bridge)
        return [self.executable, "-c", str(self.config_file)]


@pytest.fixture
def central(tmp_path):
    need_mosquitto()
    broker = CentralBroker(
        tmp_path / "central",
        users={
            DISPLAY_USER: "display-secret",
            OTHER_USER: "other-secret",
            "dashboard": "dashboard-secret",
            "homeassistant": "ha-secret",
        },
    )
    broker.start()
    yield broker
    broker.close()


def stage_for(broker: MosquittoBroker, state_dir: Path) -> TelemetryStage:
    config = load_config(
        None,
        environ={
            "EDGE_AGENT__MQTT__HOST": broker.host,
            "EDGE_AGENT__MQTT__PORT": str(broker.port),
            "EDGE_AGENT__MQTT__SITE": SITE,
            "EDGE_AGENT__MQTT__DEVICE": DEVICE,
            "EDGE_AGENT__MQTT__RECONNECT_MIN_S": "0.2",
            "EDGE_AGENT__MQTT__RECONNECT_MAX_S": "1",
        },
    )
    return TelemetryStage(dataclasses.replace(config.telemetry_settings(), state_dir=state_dir))


def report_ids(collector: Collector) -> list[str]:
    """The ids of the audience reports received, in arrival order (copies included)."""
    topic = TOPICS.topic(Leaf.AUDIENCE_REPORT)
    return [json.loads(payload)["id"] for payload in collector.payloads(topic)]


def test_bridge_recipe_forwards_and_queues_through_a_central_outage(central, tmp_path):
    bridge = doc_block("bridge-config")
    bridge = set_option(bridge, "address", f"{HOST}:{central.tls_port}")
    bridge = set_option(bridge, "bridge_cafile", str(central.ca_file))
    bridge = set_option(bridge, "remote_password", "display-secret")
    bridge = set_option(bridge, "restart_timeout", "1 2")
    assert f"remote_username {DISPLAY_USER}\n" in bridge
    display = DisplayBroker(tmp_path / "display", bridge)
    # The fleet's consumer: a persistent session, so it misses nothing across the restart.
    bridge_state = f"edge-agent-bridge/{SITE}/{DEVICE}"
    reports = TOPICS.topic(Leaf.AUDIENCE_REPORT)
    # The fleet's consumer: a persistent session, so it misses nothing across the restart.
    collector = Collector(
        central,
        [f"{TOPICS.root}/#", bridge_state],
        client_id="fleet-consumer",
        clean_session=False,
        tls=True,
        username="homeassistant",
        password="ha-secret",
    )
    stage = None
    try:
        assert collector.wait_connected()
        display.start()
        # The bridge is up: its state arrived over TLS, through the ACL.
        assert collector.wait_for(lambda: collector.payloads(bridge_state)[-1:] == [b"1"])

        stage = stage_for(display, tmp_path / "state")
        stage.start()
        stage.report(report(T0))
        collector.wait_for_messages(1, reports)
        availability = collector.wait_for_messages(1, TOPICS.topic(Leaf.AVAILABILITY))
        assert json.loads(availability[0].payload)["state"] == "online"
        assert wait_until(lambda: stage.outbox.count() == 0)
        assert len(report_ids(collector)) == 1

        central.stop()
        for index in range(1, QUEUED + 1):
            stage.report(report(T0 + index * 60, passers_by=index + 1))
        # The display's broker acknowledged them all: they left the daemon's outbox and now
        # wait only in the bridge's queue.
        assert wait_until(lambda: stage.outbox.count() == 0), "the local broker took them"
        assert len(report_ids(collector)) == 1

        central.start()
        expected = 1 + QUEUED
        assert collector.wait_for(lambda: len(set(report_ids(collector))) == expected, 15), (
            f"{len(set(report_ids(collector)))} of {expected} reports\n{central.log_text()}"
        )
        arrived = [json.loads(payload) for payload in collector.payloads(reports)]
        # All of them, in the order they were made; a copy (at least once) has the same id.
        first_copies = []
        for message in arrived:
            if message["id"] not in {copy["id"] for copy in first_copies}:
                first_copies.append(message)
        assert [message["passers_by"] for message in first_copies] == [3, *range(2, QUEUED + 2)]
        # The bridge's retained state on the central broker ends up right.
        assert collector.wait_for(lambda: collector.payloads(bridge_state)[-1:] == [b"1"])
        with Collector(
            central, [bridge_state], tls=True, username="dashboard", password="dashboard-secret"
        ) as fresh:
            retained = fresh.wait_for_messages(1)
        assert [(m.payload, m.retain) for m in retained] == [(b"1", True)]
    finally:
        if stage is not None:
            stage.stop()
        collector.close()
        display.close()


def attempt(broker: MosquittoBroker, topic: str, payload: bytes, user: str, password: str):
    """Publish once at QoS 1 and do not mind how a denied publish ends: mosquitto acknowledges
    it or closes the connection (it does both, depending on version and TLS)."""
    with contextlib.suppress(ConnectionError, TimeoutError, RuntimeError):
        publish(broker, [(topic, payload)], tls=True, username=user, password=password, timeout=3)


def test_acl_recipe_keeps_each_display_to_its_own_topics(central):
    door_right = Topics(SITE, "door-right")
    own, other = TOPICS.topic(Leaf.AUDIENCE_REPORT), door_right.topic(Leaf.AUDIENCE_REPORT)
    with Collector(
        central,
        ["edge-agent/#", "homeassistant/#"],
        tls=True,
        username="homeassistant",
        password="ha-secret",
    ) as consumer:
        assert consumer.wait_connected()
        door_left = (DISPLAY_USER, "display-secret")
        # Denied: another display's topics, a site that is not its own, another display's
        # discovery, and a read-only consumer writing. Each is followed (from a new connection)
        # by allowed messages: once those arrive, a denied one would have arrived before them.
        attempt(central, other, b"forged by door-left", *door_left)
        attempt(central, "edge-agent/elsewhere/door-left/stats", b"forged by door-left", *door_left)
        attempt(
            central, discovery_topic(door_right, "viewers_now"), b"forged by door-left", *door_left
        )
        attempt(central, "edge-agent/dashboard/x/stats", b"forged", "dashboard", "dashboard-secret")
        # Allowed: its own topics, and its own discovery (the per-display lines).
        publish(
            central,
            [(discovery_topic(TOPICS, "viewers_now"), b"{}"), (own, b"own report")],
            tls=True,
            username=DISPLAY_USER,
            password="display-secret",
        )
        publish(
            central,
            [(door_right.topic(Leaf.STATS), b"door-right's own")],
            tls=True,
            username=OTHER_USER,
            password="other-secret",
        )
        consumer.wait_for_messages(3)
        assert [(m.topic, m.payload) for m in consumer.messages()] == [
            (discovery_topic(TOPICS, "viewers_now"), b"{}"),
            (own, b"own report"),
            (door_right.topic(Leaf.STATS), b"door-right's own"),
        ]

    # A display reads nothing of the others.
    with (
        Collector(
            central, ["edge-agent/#"], tls=True, username=OTHER_USER, password="other-secret"
        ) as snoop,
        Collector(
            central, ["edge-agent/#"], tls=True, username="dashboard", password="dashboard-secret"
        ) as reader,
    ):
        assert snoop.wait_connected() and reader.wait_connected()
        publish(
            central,
            [(own, b"not for door-right")],
            tls=True,
            username=DISPLAY_USER,
            password="display-secret",
        )
        reader.wait_for_messages(1)
        time.sleep(0.2)  # both subscribers were served in the same broker loop
        assert snoop.messages() == []
