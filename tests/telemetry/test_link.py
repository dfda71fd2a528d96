"""The telemetry stage and its MQTT link against a real broker (mosquitto; amqtt as fallback).

Reports are real `AudienceReport` values; every message that arrives is checked against the
published JSON Schemas. Outages are real: the broker process is stopped and started again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from edge_agent.config import load_config
from edge_agent.telemetry.homeassistant import discovery_topic
from edge_agent.telemetry.stage import TelemetryStage
from edge_agent.telemetry.topics import Leaf, Topics
from edge_agent.telemetry.values import DaemonStats
from tests.support.mqtt_broker import Collector, publish
from tests.support.polling import wait_until
from tests.support.telemetry import problems, report

SITE, DEVICE = "test-site", "door-1"
TOPICS = Topics(SITE, DEVICE)
ALL = [f"{TOPICS.root}/#", "homeassistant/#"]
T0 = 1_795_000_000.0  # a fixed wall time for the reports' windows: their order is checkable


def mqtt_environ(broker, **overrides: str) -> dict[str, str]:
    environ = {
        "EDGE_AGENT__MQTT__HOST": broker.host,
        "EDGE_AGENT__MQTT__PORT": str(broker.port),
        "EDGE_AGENT__MQTT__SITE": SITE,
        "EDGE_AGENT__MQTT__DEVICE": DEVICE,
        "EDGE_AGENT__MQTT__RECONNECT_MIN_S": "0.2",
        "EDGE_AGENT__MQTT__RECONNECT_MAX_S": "1",
    }
    environ.update({f"EDGE_AGENT__MQTT__{key.upper()}": value for key, value in overrides.items()})
    return environ


def make_stage(broker, state_dir: Path, **overrides: str) -> TelemetryStage:
    config = load_config(None, environ=mqtt_environ(broker, **overrides))
    return TelemetryStage(dataclasses.replace(config.telemetry_settings(), state_dir=state_dir))


def decoded(collector: Collector, leaf: Leaf) -> list[dict]:
    return [json.loads(p) for p in collector.payloads(TOPICS.topic(leaf))]


def test_states_come_before_online_and_every_message_follows_its_schema(broker, tmp_path):
    collector = Collector(broker, ALL)
    assert collector.wait_connected()
    stage = make_stage(broker, tmp_path)
    stage.start()
    for index in range(3):
        stage.report(report(T0 + index * 60, passers_by=index + 1))
    stage.current(2, 1, time.monotonic() + 10, T0)
    stage.stats(
        DaemonStats(
            interval_s=30.0, fps=9.8, faces_per_frame=0.5, classified_per_frame=0.1,
            detect_ms=3.0, track_ms=0.1, classify_ms=0.5, audience_ms=0.1,
            frames_skipped=0, reconnects=0, source_connected=True,
            source_stalled=False, cpu_temperature_c=None,
        ),
        T0,
    )  # fmt: skip
    collector.wait_for_messages(3, TOPICS.topic(Leaf.AUDIENCE_REPORT))
    collector.wait_for_messages(1, TOPICS.topic(Leaf.STATS))
    stage.stop()
    collector.wait_for(
        lambda: any(m["state"] == "stopped" for m in decoded(collector, Leaf.AVAILABILITY))
    )
    collector.close()

    topics = [m.topic for m in collector.messages()]
    online = topics.index(TOPICS.topic(Leaf.AVAILABILITY))
    before_online = set(topics[:online])
    assert {
        discovery_topic(TOPICS, "viewers_now"),
        TOPICS.topic(Leaf.PRIVACY),
        TOPICS.topic(Leaf.AUDIENCE_TODAY),
        TOPICS.topic(Leaf.AUDIENCE_CURRENT),
    } <= before_online, "every state must be on the broker before 'online'"
    for message in collector.messages(f"{TOPICS.root}/#"):
        assert problems(message.payload) == [], (message.topic, message.payload)
    reports = decoded(collector, Leaf.AUDIENCE_REPORT)
    assert [r["passers_by"] for r in reports] == [1, 2, 3]
    assert [m["state"] for m in decoded(collector, Leaf.AVAILABILITY)] == ["online", "stopped"]
    assert decoded(collector, Leaf.AUDIENCE_TODAY)[-1]["passers_by"] == 6
    assert decoded(collector, Leaf.AUDIENCE_CURRENT)[-1]["viewers_now"] == 1
    assert decoded(collector, Leaf.STATS)[-1]["outbox_pending"] >= 0
    # A newcomer gets the retained picture: stopped, not offline, and the latest states.
    late = Collector(broker, ALL)
    late.wait_for_messages(1, TOPICS.topic(Leaf.AVAILABILITY))
    assert decoded(late, Leaf.AVAILABILITY)[-1]["state"] == "stopped"
    assert decoded(late, Leaf.AUDIENCE_TODAY)[-1]["passers_by"] == 6
    late.close()


def test_broker_outage_delays_reports_and_loses_none(broker_factory, tmp_path):
    """The acceptance test in small: reports every 50 ms, the real broker process stopped for
    ~3 s (60 windows' worth), then started again: every report arrives, in order."""
    broker = broker_factory()
    persistent = broker.supports_persistent_sessions
    collector = Collector(
        broker,
        [TOPICS.topic(Leaf.AUDIENCE_REPORT)],
        client_id="outage-collector",
        clean_session=not persistent,
    )
    assert collector.wait_connected()
    # Without persistent sessions (amqtt) the collector must be back before the stage is.
    delay = "0.2" if persistent else "1.5"
    stage = make_stage(broker, tmp_path, reconnect_min_s=delay, reconnect_max_s=delay)
    stage.start()
    sent = 0

    def produce(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            stage.report(report(T0 + sent, passers_by=1 + sent % 4))
            sent += 1
            time.sleep(0.05)

    produce(20)
    broker.stop()
    produce(60)
    assert stage.outbox.count() >= 60 - 5, "reports made while the broker is down wait on disk"
    assert not stage.link_status().connected
    broker.start()
    produce(20)
    try:
        got = collector.wait_for(lambda: len(_unique_ids(collector)) >= sent, timeout=30)
        assert got, f"{len(_unique_ids(collector))} of {sent} reports arrived"
        assert wait_until(lambda: stage.outbox.count() == 0), "acknowledged means deleted"
    finally:
        stage.stop()
        collector.close()
    received = [json.loads(p) for p in collector.payloads()]
    first_seen: dict[str, dict] = {}
    for message in received:
        first_seen.setdefault(message["id"], message)
    windows = [m["ts_ms"] for m in first_seen.values()]
    assert len(windows) == sent == 100
    assert windows == sorted(windows), "replayed in the order they were made"
    assert windows == [round((T0 + i) * 1000) for i in range(sent)]
    # A duplicate is only ever the same message again, with the same id.
    for message in received:
        assert message == first_seen[message["id"]]


def _unique_ids(collector: Collector) -> set[str]:
    return {json.loads(p)["id"] for p in collector.payloads()}


def test_messages_kept_over_a_restart_go_out_with_the_same_ids(broker_factory, tmp_path):
    broker = broker_factory()
    broker.stop()  # nobody to talk to: everything stays in the outbox file
    stage = make_stage(broker, tmp_path)
    stage.start()
    for index in range(5):
        stage.report(report(T0 + index))
    kept = [m.message_id for m in stage.outbox.pending(limit=100)]
    stage.stop(flush_timeout_s=0.2)
    assert len(kept) == 5

    broker.start()
    collector = Collector(broker, [TOPICS.topic(Leaf.AUDIENCE_REPORT)])
    assert collector.wait_connected()
    restarted = make_stage(broker, tmp_path)
    restarted.start()
    collector.wait_for_messages(5)
    restarted.stop()
    collector.close()
    assert [json.loads(p)["id"] for p in collector.payloads()] == kept


_DAEMON_STANDIN = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from edge_agent.config import load_config
    from edge_agent.telemetry.stage import TelemetryStage
    settings = replace(load_config(None).telemetry_settings(), state_dir=Path(sys.argv[1]))
    stage = TelemetryStage(settings)
    stage.start()
    while not stage.link_status().connected:
        time.sleep(0.05)
    print("connected", flush=True)
    time.sleep(60)
    """
)


def test_a_killed_process_leaves_offline_as_its_last_will(broker, tmp_path):
    collector = Collector(broker, [TOPICS.topic(Leaf.AVAILABILITY)])
    assert collector.wait_connected()
    process = subprocess.Popen(
        [sys.executable, "-c", _DAEMON_STANDIN, str(tmp_path)],
        env={**os.environ, **mqtt_environ(broker)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "connected"
        assert collector.wait_for(
            lambda: [m["state"] for m in decoded(collector, Leaf.AVAILABILITY)] == ["online"]
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert collector.wait_for(lambda: len(decoded(collector, Leaf.AVAILABILITY)) >= 2)
    finally:
        if process.poll() is None:
            process.kill()
        collector.close()
    will = decoded(collector, Leaf.AVAILABILITY)[-1]
    assert will["state"] == "offline"
    assert problems(will) == []
    assert will["id"] != decoded(collector, Leaf.AVAILABILITY)[0]["id"]


def test_tls_with_a_client_certificate(broker_factory, tmp_path):
    broker = broker_factory(tls=True, require_client_cert=True)
    cert, key = broker.client_cert("display-1")
    collector = Collector(broker, [TOPICS.topic(Leaf.AUDIENCE_REPORT)], tls=True,
                          client_cert=broker.client_cert("collector"))  # fmt: skip
    assert collector.wait_connected()
    tls = {
        "port": str(broker.tls_port),
        "tls__enabled": "true",
        "tls__ca_file": str(broker.ca_file),
    }
    stage = make_stage(
        broker, tmp_path / "a", **tls, tls__cert_file=str(cert), tls__key_file=str(key)
    )
    stage.start()
    stage.report(report(T0))
    collector.wait_for_messages(1)
    stage.stop()

    # Without a certificate the broker refuses; the report waits in the outbox.
    refused = make_stage(broker, tmp_path / "b", **tls)
    refused.start()
    refused.report(report(T0 + 1))
    assert wait_until(lambda: refused.link_status().last_error is not None)
    assert not refused.link_status().connected
    assert refused.outbox.count() == 1
    refused.stop(flush_timeout_s=0.1)
    collector.close()
    assert len(collector.payloads()) == 1


def test_credentials_from_the_environment_or_a_file(broker_factory, tmp_path):
    broker = broker_factory(users={"display": "s3cret word"})
    collector = Collector(broker, [TOPICS.topic(Leaf.AUDIENCE_REPORT)],
                          username="display", password="s3cret word")  # fmt: skip
    assert collector.wait_connected()
    # The password from the environment, as EDGE_AGENT__MQTT__PASSWORD would give it.
    stage = make_stage(broker, tmp_path / "env", username="display", password="s3cret word")
    stage.start()
    stage.report(report(T0))
    collector.wait_for_messages(1)
    stage.stop()
    # The password from a file (a systemd credential), with its trailing newline.
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret word\n")
    stage = make_stage(broker, tmp_path / "file", username="display", password_file=str(secret))
    stage.start()
    stage.report(report(T0 + 1))
    collector.wait_for_messages(2)
    stage.stop()
    # A wrong password: refused, said so, nothing lost.
    wrong = make_stage(broker, tmp_path / "wrong", username="display", password="guess")
    wrong.start()
    wrong.report(report(T0 + 2))
    assert wait_until(lambda: wrong.link_status().last_error is not None)
    assert "refused" in wrong.link_status().last_error
    assert wrong.outbox.count() == 1
    wrong.stop(flush_timeout_s=0.1)
    collector.close()
    assert len(collector.payloads()) == 2


def test_home_assistant_restart_gets_discovery_and_states_again(broker, tmp_path):
    viewers_now = discovery_topic(TOPICS, "viewers_now")  # one of its discovery messages
    collector = Collector(broker, ALL)
    assert collector.wait_connected()
    stage = make_stage(broker, tmp_path)
    stage.start()
    collector.wait_for_messages(1, TOPICS.topic(Leaf.AVAILABILITY))
    assert len(collector.messages(viewers_now)) == 1
    publish(broker, [("homeassistant/status", "online")])
    collector.wait_for_messages(2, viewers_now)
    collector.wait_for_messages(2, TOPICS.topic(Leaf.AUDIENCE_TODAY))
    # Its "offline" (Home Assistant going down) changes nothing.
    publish(broker, [("homeassistant/status", "offline")])
    time.sleep(0.3)
    assert len(collector.messages(viewers_now)) == 2
    stage.stop()
    collector.close()
    discovery = json.loads(collector.payloads(viewers_now)[0])
    assert discovery["state_topic"] == TOPICS.topic(Leaf.AUDIENCE_CURRENT)


def test_discovery_can_be_turned_off(broker, tmp_path):
    collector = Collector(broker, ["homeassistant/#", TOPICS.topic(Leaf.AVAILABILITY)])
    assert collector.wait_connected()
    stage = make_stage(broker, tmp_path, homeassistant__discovery="false")
    stage.start()
    collector.wait_for_messages(1, TOPICS.topic(Leaf.AVAILABILITY))
    stage.stop()
    collector.close()
    assert collector.messages("homeassistant/#") == []
