"""The MQTT link: drains the durable outbox and keeps the retained states published.

Three threads meet here, and none of them waits on another:

- the producer (the vision loop) puts records into the `Outbox` and states into `set_state`,
  and returns at once; it never touches the socket;
- paho's network thread (`loop_start`) connects, reconnects with back-off, reads and writes;
- the sender thread publishes. After each connect it sends every retained state (discovery,
  privacy, current audience, ...) and only then `online`, so a dashboard never sees `online`
  next to stale state. Then it drains the outbox oldest first, keeping at most `inflight`
  messages unacknowledged, and deletes each one only when its PUBACK arrives.

If the connection drops, paho sends its unacknowledged messages again after the reconnect
(QoS 1, same MQTT message) and the sender carries on after the last one it handed over, so
order holds. If the process dies, whatever was not acknowledged is still in the outbox and
goes out again, with the same `id`, after the restart.

The last will is `offline` (retained). A clean `close()` publishes `stopped` and disconnects,
which makes the broker drop the will; `offline` therefore always means "died".
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.telemetry.outbox import Outbox, OutboxMessage
from edge_agent.telemetry.values import LinkSettings, TlsSettings

log = logging.getLogger(__name__)

MAX_BATCH = 200  # outbox rows read per query while draining


@dataclass(frozen=True, slots=True)
class Message:
    """A retained state or a one-off message, outside the outbox."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class LinkStatus:
    connected: bool
    connects: int  # successful connections since start
    last_error: str | None  # why the last connection attempt or connection failed
    published: int  # outbox messages handed to the network
    acknowledged: int  # outbox messages the broker acknowledged (and that left the outbox)


def new_paho_client(
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: TlsSettings | None = None,
    reconnect_min_s: float = 1.0,
    reconnect_max_s: float = 60.0,
    reconnect_on_failure: bool = True,
) -> mqtt.Client:
    """A paho 2.x MQTT 3.1.1 client (clean session) with credentials, TLS and back-off set:
    what every connection of ours has in common (the link, the dashboard, the demo's view)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=reconnect_on_failure,
    )
    client.reconnect_delay_set(  # type: ignore[arg-type]  # paho does float arithmetic
        min_delay=reconnect_min_s, max_delay=reconnect_max_s
    )
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        if not tls.verify_hostname:
            client.tls_insecure_set(True)
    return client


class MqttLink:
    """One device's connection to its broker."""

    def __init__(
        self,
        settings: LinkSettings,
        outbox: Outbox,
        *,
        availability_topic: str,
        make_availability: Callable[[str], bytes],
        subscriptions: dict[str, Callable[[bytes], None]] | None = None,
    ) -> None:
        """`make_availability(state)` builds the payload for "online", "stopped" or
        "offline" (the will). `subscriptions`: topic -> handler, called on the network
        thread (Home Assistant's status topic); keep handlers short."""
        self.settings = settings
        self.outbox = outbox
        self.availability_topic = availability_topic
        self.make_availability = make_availability
        self.subscriptions = dict(subscriptions or {})
        self._client = self._make_client()
        self._wake = threading.Condition()
        self._states: dict[str, Message] = {}  # latest value per topic, in first-set order
        self._dirty: set[str] = set()
        self._resend_states = False  # set on connect and on request: send every state again
        self._connected = False
        self._refused = False  # the broker's CONNACK said no (network thread only)
        self._stopping = False
        self._work = False  # something for the sender: set with every notify, under the lock
        self._acked_mids: deque[int] = deque()  # appended by the network thread
        self._seq_by_mid: dict[int, int] = {}  # sender thread only
        self._after_seq = 0  # the last outbox seq handed to paho
        self._connects = 0
        self._last_error: str | None = None
        self._published = 0
        self._acknowledged = 0
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    # ----------------------------------------------------------------------------------------
    # Producer side: never blocks on the network

    def set_state(self, message: Message) -> None:
        """The newest value of a retained state; sent now if connected, else on connect."""
        with self._wake:
            self._states[message.topic] = message
            self._dirty.add(message.topic)
            self._work = True
            self._wake.notify_all()

    def wake(self) -> None:
        """Something was put into the outbox."""
        with self._wake:
            self._work = True
            self._wake.notify_all()

    def resend_states(self) -> None:
        """Send every state again (Home Assistant restarted and asked for them)."""
        with self._wake:
            self._resend_states = True
            self._work = True
            self._wake.notify_all()

    def status(self) -> LinkStatus:
        with self._wake:
            return LinkStatus(
                self._connected,
                self._connects,
                self._last_error,
                self._published,
                self._acknowledged,
            )

    # ----------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> None:
        settings = self.settings
        self._set_will()
        # connect_async + loop_start: the first attempt, its failures and every reconnect
        # happen on paho's thread, with back-off, and start() returns at once.
        self._client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        self._client.loop_start()
        self._sender.start()
        log.info(
            "MQTT: publishing to %s:%d as %s%s",
            settings.host,
            settings.port,
            settings.client_id,
            " (TLS)" if settings.tls else "",
        )

    def close(self, flush_timeout_s: float = 2.0) -> bool:
        """Send what is pending (up to `flush_timeout_s`), publish `stopped`, disconnect.
        True if everything was acknowledged; what was not stays in the outbox for the next
        start."""
        deadline = time.monotonic() + flush_timeout_s
        drained = self._wait_drained(deadline)
        # The sender stops first, so no `online` (say, for Home Assistant's birth message)
        # can follow `stopped`.
        with self._wake:
            self._stopping = True
            self._work = True
            self._wake.notify_all()
        self._sender.join(timeout=2.0)
        self._process_acks()
        stopped_sent = False
        if self._connected:
            info = self._client.publish(
                self.availability_topic, self.make_availability("stopped"), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
                stopped_sent = info.is_published()
            except (RuntimeError, ValueError):
                stopped_sent = False
        # A clean DISCONNECT: the broker discards the will, so `stopped` stays.
        self._client.disconnect()
        self._client.loop_stop()
        if not drained:
            log.warning(
                "MQTT: stopping with %d messages not yet acknowledged; they stay in the outbox"
                " and are sent after the next start",
                self.outbox.count(),
            )
        return drained and stopped_sent

    # ----------------------------------------------------------------------------------------
    # paho callbacks (network thread)

    def _make_client(self) -> mqtt.Client:
        settings = self.settings
        client = new_paho_client(
            settings.client_id,
            username=settings.username,
            password=settings.password,
            tls=settings.tls,
            reconnect_min_s=settings.reconnect_min_s,
            reconnect_max_s=settings.reconnect_max_s,
        )
        # Our own window bounds what is in flight; paho must not refuse a publish.
        client.max_inflight_messages_set(settings.inflight)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _set_will(self) -> None:
        # Built anew before each connection, so each `offline` has its own id.
        self._client.will_set(
            self.availability_topic, self.make_availability("offline"), qos=1, retain=True
        )

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            self._refused = True
            self._note_error(f"the broker refused the connection: {reason}")
            return
        # Subscribing here keeps the subscriptions across reconnects (clean sessions).
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        with self._wake:
            self._connected = True
            self._connects += 1
            self._last_error = None
            self._resend_states = True
            self._work = True
            self._wake.notify_all()
        log.info("MQTT: connected to %s:%d", self.settings.host, self.settings.port)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._note_error(f"cannot connect to {self.settings.host}:{self.settings.port}")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        with self._wake:
            was_connected = self._connected
            self._connected = False
            stopping = self._stopping
            refused, self._refused = self._refused, False
        if stopping:
            return
        self._set_will()
        if was_connected:
            log.warning("MQTT: connection lost (%s); reconnecting, messages are kept", reason)
        elif not refused:  # a refusal has said why already
            # With TLS 1.3 a missing or untrusted client certificate shows up only here: the
            # handshake "succeeds" and the broker hangs up before its CONNACK.
            self._note_error(
                f"the connection closed before the broker accepted it ({reason}); check the"
                " TLS certificates and the credentials"
            )

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        _reason: ReasonCode,
        _properties: object,
    ) -> None:
        # paho holds its message lock while calling this: only record the mid here and let
        # the sender thread touch the outbox.
        self._acked_mids.append(mid)
        with self._wake:
            self._work = True
            self._wake.notify_all()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        handler = self.subscriptions.get(message.topic)
        if handler is None:
            return
        try:
            handler(message.payload)
        except Exception:
            log.exception("MQTT: handling a message on %s failed", message.topic)

    def _note_error(self, text: str) -> None:
        with self._wake:
            repeated = text == self._last_error
            self._last_error = text
        if not repeated:
            log.warning("MQTT: %s; retrying with back-off, messages are kept", text)

    # ----------------------------------------------------------------------------------------
    # Sender thread

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                # The flag, not the notify, says there is work: a notify that came while
                # this thread was publishing would otherwise be missed for a whole timeout.
                if not self._work:
                    self._wake.wait(timeout=0.5)
                self._work = False
                if self._stopping:
                    return
                connected = self._connected
                resend_all = self._resend_states and connected
                if resend_all:
                    self._resend_states = False
                states = self._take_states(resend_all) if connected else []
            self._process_acks()
            if not connected:
                continue
            try:
                self._publish_states(states, online=resend_all)
                self._drain()
            except Exception:
                # Never let the sender die: the outbox keeps everything; try again soon.
                log.exception("MQTT: publishing failed")

    def _take_states(self, everything: bool) -> list[Message]:
        topics = list(self._states) if everything else [t for t in self._states if t in self._dirty]
        self._dirty.clear()
        return [self._states[topic] for topic in topics]

    def _publish_states(self, states: list[Message], *, online: bool) -> None:
        for state in states:
            self._client.publish(state.topic, state.payload, qos=state.qos, retain=state.retain)
        if online:
            self._client.publish(
                self.availability_topic, self.make_availability("online"), qos=1, retain=True
            )

    def _drain(self) -> None:
        while True:
            room = self.settings.inflight - len(self._seq_by_mid)
            if room <= 0 or not self._connected:
                return
            batch = self.outbox.pending(limit=min(room, MAX_BATCH), after_seq=self._after_seq)
            if not batch:
                return
            for message in batch:
                self._publish_record(message)
            self.outbox.mark_sent(message.seq for message in batch)
            with self._wake:
                self._published += len(batch)

    def _publish_record(self, message: OutboxMessage) -> None:
        info = self._client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        # Even MQTT_ERR_NO_CONN keeps a QoS 1 message in paho's queue, sent after reconnect.
        # The mapping is written before this thread looks at acknowledgements again, so a
        # PUBACK that beats it here is not lost.
        self._seq_by_mid[info.mid] = message.seq
        self._after_seq = message.seq

    def _process_acks(self) -> None:
        seqs = []
        while self._acked_mids:
            seq = self._seq_by_mid.pop(self._acked_mids.popleft(), None)
            if seq is not None:
                seqs.append(seq)
        if seqs:
            self.outbox.ack_many(seqs)
            with self._wake:
                self._acknowledged += len(seqs)

    def _wait_drained(self, deadline: float) -> bool:
        """Until the outbox is empty and nothing is in flight, while connected (the sender
        thread does the work; this only watches)."""
        while True:
            if not self._connected:
                return False
            if not self._seq_by_mid and not self._acked_mids and self.outbox.count() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            with self._wake:
                self._wake.wait(timeout=0.05)
