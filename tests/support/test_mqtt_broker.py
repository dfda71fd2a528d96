"""The MQTT test support itself (tests/support/mqtt_broker.py), against a real broker and paho.

The MQTT client tests lean on this: if a restart did not keep sessions, or a "refused" client got
in, their results would mean nothing. Runs on mosquitto, or on amqtt with the gaps it declares
skipped; EDGE_AGENT_MQTT_BROKER=amqtt runs it on the fallback even where mosquitto is installed.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trustme

from tests.support import mqtt_broker
from tests.support.mqtt_broker import (
    AmqttBroker,
    Broker,
    BrokerStartError,
    BrokerUnavailable,
    Collector,
    MosquittoBroker,
    UnsupportedFeature,
    amqtt_installed,
    chosen_broker_kind,
    port_is_listening,
    publish,
    try_connect,
)


def test_published_messages_arrive_in_order_with_their_qos(broker: Broker) -> None:
    with Collector(broker, ["edge/#"]) as collector:
        assert collector.wait_connected(), collector
        publish(broker, [("edge/a/1", b"one"), ("edge/b/2", "two"), ("edge/a/3", b"\x00\xff")])

        got = collector.wait_for_messages(3)

    assert [(m.topic, m.payload) for m in got] == [
        ("edge/a/1", b"one"),
        ("edge/b/2", b"two"),
        ("edge/a/3", b"\x00\xff"),
    ]
    assert {(m.qos, m.retain) for m in got} == {(1, False)}
    assert collector.payloads("edge/a/#") == [b"one", b"\x00\xff"]


def test_a_retained_message_reaches_a_later_subscriber_flagged_retained(broker: Broker) -> None:
    publish(broker, [("edge/status", b"online")], retain=True)

    with Collector(broker, ["edge/status"]) as collector:
        (got,) = collector.wait_for_messages(1)

    assert (got.payload, got.retain) == (b"online", True)


def test_tls_listener_round_trip_beside_the_plain_one(broker_factory) -> None:
    broker = broker_factory(tls=True)
    assert broker.tls_port not in (None, broker.port)

    with Collector(broker, ["edge/#"], tls=True) as collector:
        assert collector.wait_connected(), collector
        publish(broker, [("edge/over-tls", b"secret")], tls=True)
        publish(broker, [("edge/in-the-clear", b"plain")])

        got = collector.wait_for_messages(2)

    assert {m.payload for m in got} == {b"secret", b"plain"}


def test_a_client_that_does_not_trust_the_ca_is_refused(broker_factory, tmp_path: Path) -> None:
    broker = broker_factory(tls=True)
    stranger_ca = tmp_path / "someone-elses-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger_ca))

    outcome = try_connect(broker, tls=True, ca_file=stranger_ca)

    assert not outcome.accepted
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.reason


def test_a_required_client_certificate_is_enforced(broker_factory) -> None:
    broker = broker_factory(tls=True, require_client_cert=True)  # skips where unsupported

    without = try_connect(broker, tls=True)
    with_cert = try_connect(broker, tls=True, client_cert=broker.client_cert("sign-01"))

    assert not without.accepted, without
    assert with_cert.accepted, with_cert


@pytest.mark.skipif(not amqtt_installed(), reason="amqtt is not installed")
def test_amqtt_refuses_to_pretend_it_requires_client_certificates(tmp_path: Path) -> None:
    # It would accept certificate-less clients, and a test relying on the refusal would pass
    # for the wrong reason.
    with pytest.raises(UnsupportedFeature, match="client certificates"):
        AmqttBroker(tmp_path, tls=True, require_client_cert=True)


def test_only_known_users_with_their_password_get_in(broker_factory) -> None:
    broker = broker_factory(users={"sign-01": "right", "backend": "other"})

    assert try_connect(broker, username="sign-01", password="wrong").reason == "Not authorized"
    assert try_connect(broker, username="nobody", password="right").reason == "Not authorized"
    assert not try_connect(broker).accepted  # anonymous
    assert try_connect(broker, username="sign-01", password="right").accepted

    with Collector(broker, ["edge/#"], username="backend", password="other") as collector:
        assert collector.wait_connected(), collector
        publish(broker, [("edge/x", b"1")], username="sign-01", password="right")
        assert collector.wait_for_messages(1)[0].payload == b"1"


def test_a_persistent_session_gets_what_was_published_while_it_was_away(broker_factory) -> None:
    # Logged-in users, because amqtt queues nothing for anonymous sessions.
    users = {"sub": "s", "pub": "p"}
    broker = broker_factory(users=users)
    assert broker.queues_for_offline_sessions

    with Collector(
        broker, ["edge/#"], client_id="backend", clean_session=False, username="sub", password="s"
    ) as collector:
        assert collector.wait_connected(), collector
        collector.disconnect()
        publish(broker, [(f"edge/{n}", str(n)) for n in range(3)], username="pub", password="p")
        collector.connect()

        got = collector.wait_for_messages(3)

    assert [m.payload for m in got] == [b"0", b"1", b"2"]
    assert collector.session_present == [False, True]
    assert {m.retain for m in got} == {broker.marks_queued_messages_retained}


def test_a_persistent_session_and_its_queue_survive_a_broker_restart(broker: Broker) -> None:
    if not broker.supports_persistent_sessions:
        pytest.skip(f"{broker.kind} keeps sessions in memory only; a restart loses them")
    ports = (broker.port, broker.tls_port)

    with Collector(broker, ["edge/#"], client_id="backend", clean_session=False) as collector:
        assert collector.wait_connected(), collector
        # Disconnected on purpose, so the messages below must wait in the broker's queue rather
        # than race the subscriber's reconnect.
        collector.disconnect()
        publish(broker, [("edge/before", b"queued, then saved on SIGTERM")])
        broker.restart()
        assert (broker.port, broker.tls_port) == ports
        publish(broker, [("edge/after", b"queued after the restart")])
        collector.connect()

        got = collector.wait_for_messages(2)

    assert [m.topic for m in got] == ["edge/before", "edge/after"]
    assert collector.session_present == [False, True]


def test_without_persistence_a_restart_forgets_sessions(broker_factory) -> None:
    broker = broker_factory(persistence=False)

    with Collector(broker, ["edge/#"], client_id="backend", clean_session=False) as collector:
        assert collector.wait_connected(), collector
        collector.disconnect()
        broker.restart()
        collector.connect()
        assert collector.wait_connected(connections=2), collector

    assert collector.session_present == [False, False]


def test_a_collector_resubscribes_by_itself_after_a_restart(broker: Broker) -> None:
    with Collector(broker, ["edge/#"]) as collector:
        assert collector.wait_connected(), collector
        broker.restart()
        assert collector.wait_connected(connections=2), collector
        publish(broker, [("edge/back", b"hello again")])

        assert collector.wait_for_messages(1)[0].payload == b"hello again"


def test_kill_closes_the_port_and_start_brings_the_broker_back(broker: Broker) -> None:
    port = broker.port
    broker.kill()

    assert not broker.is_running
    assert broker.pid is None
    assert not port_is_listening(port)
    with pytest.raises(RuntimeError, match="not running"):
        broker.cpu_seconds()

    broker.start()
    assert broker.port == port
    with Collector(broker, ["edge/#"]) as collector:
        assert collector.wait_connected(), collector
        publish(broker, [("edge/alive", b"yes")])
        assert collector.wait_for_messages(1)[0].payload == b"yes"


def test_start_refuses_a_port_another_process_listens_on(broker: Broker) -> None:
    broker.stop()
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.bind((broker.host, broker.port))
        intruder.listen()

        with pytest.raises(BrokerStartError, match=str(broker.port)):
            broker.start()

    assert not broker.is_running


def test_cpu_seconds_reads_the_broker_process(broker: Broker) -> None:
    command_name = Path(f"/proc/{broker.pid}/comm").read_text().strip()
    assert command_name.startswith("mosquitto" if broker.kind == "mosquitto" else "python")

    before = broker.cpu_seconds()
    publish(broker, [("edge/load", b"x" * 1000)] * 50)
    assert 0 <= before <= broker.cpu_seconds()


def test_the_log_is_readable_while_the_broker_runs(broker: Broker) -> None:
    # Start-up failures quote it, so it must not sit in a buffer until the broker exits.
    assert str(broker.port) in broker.log_text()


class TestChoosingTheBroker:
    """Which broker runs, from EDGE_AGENT_MQTT_BROKER, EDGE_AGENT_REQUIRE_MOSQUITTO and PATH."""

    @pytest.fixture(autouse=True)
    def clean_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(mqtt_broker.BROKER_ENV, raising=False)
        monkeypatch.delenv(mqtt_broker.REQUIRE_MOSQUITTO_ENV, raising=False)

    def without_mosquitto(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(mqtt_broker, "find_mosquitto", lambda: None)

    def test_amqtt_is_the_fallback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.without_mosquitto(monkeypatch)
        monkeypatch.setattr(mqtt_broker, "amqtt_installed", lambda: True)
        assert chosen_broker_kind() == "amqtt"

    def test_mosquitto_wins_when_installed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(mqtt_broker, "find_mosquitto", lambda: "/somewhere/mosquitto")
        assert chosen_broker_kind() == "mosquitto"

    def test_the_environment_forces_amqtt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(mqtt_broker, "find_mosquitto", lambda: "/somewhere/mosquitto")
        monkeypatch.setattr(mqtt_broker, "amqtt_installed", lambda: True)
        monkeypatch.setenv(mqtt_broker.BROKER_ENV, "amqtt")
        assert chosen_broker_kind() == "amqtt"

    def test_ci_fails_instead_of_falling_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.without_mosquitto(monkeypatch)
        monkeypatch.setenv(mqtt_broker.REQUIRE_MOSQUITTO_ENV, "1")
        with pytest.raises(BrokerUnavailable, match="mosquitto is not installed"):
            chosen_broker_kind()

    def test_forcing_amqtt_contradicts_requiring_mosquitto(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(mqtt_broker.REQUIRE_MOSQUITTO_ENV, "1")
        monkeypatch.setenv(mqtt_broker.BROKER_ENV, "amqtt")
        with pytest.raises(BrokerUnavailable, match="contradicts"):
            chosen_broker_kind()

    def test_an_unknown_broker_name_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(mqtt_broker.BROKER_ENV, "hivemq")
        with pytest.raises(BrokerUnavailable, match="hivemq"):
            chosen_broker_kind()

    def test_nothing_installed_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.without_mosquitto(monkeypatch)
        monkeypatch.setattr(mqtt_broker, "amqtt_installed", lambda: False)
        with pytest.raises(BrokerUnavailable, match="install mosquitto"):
            chosen_broker_kind()

    def test_broker_builds_the_chosen_kind(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        if not amqtt_installed():
            pytest.skip("amqtt is not installed")
        monkeypatch.setenv(mqtt_broker.BROKER_ENV, "amqtt")
        broker = Broker(tmp_path)
        assert type(broker) is AmqttBroker
        assert (broker.kind, broker.is_running) == ("amqtt", False)
        assert issubclass(MosquittoBroker, Broker)
