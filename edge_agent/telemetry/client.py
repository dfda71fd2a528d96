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

Reconnects back off exponentially, with jitter, and a connection the broker accepts and then
closes soon (an ACL denial, in MQTT 3.1.1) does not start the back-off again: the policy is
`reconnect.ReconnectBackoff`, and its warnings go through `reconnect.WarningLimiter`. Such a
drop's warning names the first unacknowledged topic. A PUBACK with a failure reason code (MQTT
5's "Not authorized") is reported with its topic too; that message is not acknowledged in the
outbox, so it stays there, undelivered, and is offered again after the next start. (mosquitto
2.0 acknowledges a denied MQTT 3.1.1 publish as if it were delivered: no client can tell, which is
why `edge-agent doctor` checks a publish over MQTT 5.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.telemetry.outbox import Outbox, OutboxMessage

# new_paho_client lives in paho_client.py; imported here for the link, and the commands that
# build their own connection still import it from this module.
from edge_agent.telemetry.paho_client import new_paho_client
from edge_agent.telemetry.reconnect import ReconnectBackoff, WarningLimiter
from edge_agent.telemetry.topics import topic_name_problem
from edge_agent.telemetry.values import LinkSettings

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
    refused: int = 0  # publishes the broker answered with a failure reason code (MQTT 5)
    attempts: int = 0  # connection attempts since start (successful or not)


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
        protocol: int = mqtt.MQTTv311,
    ) -> None:
        """`make_availability(state)` builds the payload for "online", "stopped" or
        "offline" (the will). `subscriptions`: topic -> handler, called on the network
        thread (Home Assistant's status topic); keep handlers short. A topic MQTT cannot
        carry, or a TLS file that cannot be used, raises ValueError here, at start-up,
        instead of killing the network thread later."""
        for topic in (availability_topic, *(subscriptions or {})):
            problem = topic_name_problem(topic)
            if problem is not None:
                raise ValueError(f"MQTT topic {topic[:80]!r}: {problem}")
        self.settings = settings
        self.outbox = outbox
        self.availability_topic = availability_topic
        self.make_availability = make_availability
        self.subscriptions = dict(subscriptions or {})
        self.protocol = protocol
        self._backoff = ReconnectBackoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self._warnings = WarningLimiter(log)
        # Topics of the publishes not yet acknowledged, oldest first (mid -> topic): the
        # first one is the likely reason when the broker hangs up. A lock of its own, never
        # held while calling paho, because paho calls on_publish holding its own locks.
        self._topics_lock = threading.Lock()
        self._unacked_topics: dict[int, str] = {}
        self._early_acks: set[int] = set()  # PUBACKs that beat the sender's bookkeeping
        self._last_topic_sent: str | None = None  # since the last connect (QoS > 0 only)
        self._refused_mids: deque[int] = deque()  # failure PUBACKs (MQTT 5), network thread
        self._connected_at = 0.0
        self._client = self._make_client()
        self._wake = threading.Condition()
        self._states: dict[str, Message] = {}  # latest value per topic, in first-set order
        self._dirty: set[str] = set()
        self._resend_states = False  # set on connect and on request: send every state again
        self._connected = False
        self._connack_refused = False  # the broker's CONNACK said no (network thread only)
        self._stopping = False
        self._work = False  # something for the sender: set with every notify, under the lock
        self._acked_mids: deque[int] = deque()  # appended by the network thread
        self._seq_by_mid: dict[int, int] = {}  # sender thread only
        self._after_seq = 0  # the last outbox seq handed to paho
        self._connects = 0
        self._last_error: str | None = None
        self._published = 0
        self._acknowledged = 0
        self._refused = 0
        self._attempts = 0
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
                self._refused,
                self._attempts,
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
            protocol=self.protocol,
            tls_prefix="mqtt.tls.",
        )
        # An exception in one of our callbacks must not end paho's network thread (that
        # would leave telemetry dead while the daemon runs on): paho logs it through on_log
        # and carries on. The callbacks catch what they expect themselves.
        client.suppress_exceptions = True
        client.on_log = self._on_log
        client.on_pre_connect = self._on_pre_connect
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

    def _on_pre_connect(self, _client: mqtt.Client, _userdata: object) -> None:
        with self._wake:
            self._attempts += 1

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            self._connack_refused = True
            self._note_error(f"the broker refused the connection: {reason}")
            return
        # Subscribing here keeps the subscriptions across reconnects (clean sessions).
        for topic in self.subscriptions:
            try:
                client.subscribe(topic, qos=1)
            except ValueError as error:  # checked in __init__; never let it stop the link
                self._warnings.warning("MQTT: cannot subscribe to %r: %s", topic[:80], error)
        with self._wake:
            self._connected = True
            self._connected_at = time.monotonic()
            self._last_topic_sent = None
            self._connects += 1
            self._last_error = None
            self._resend_states = True
            self._work = True
            self._wake.notify_all()
        log.info("MQTT: connected to %s:%d", self.settings.host, self.settings.port)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        delay = self._next_wait(self._backoff.failed())
        self._note_error(
            f"cannot connect to {self.settings.host}:{self.settings.port}", retry_s=delay
        )

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
            refused, self._connack_refused = self._connack_refused, False
            up_for = time.monotonic() - self._connected_at
        if stopping:
            return
        with self._topics_lock:
            # The first publish not acknowledged; else the last one handed to paho (its mid
            # may not be recorded yet when the broker hangs up at once).
            culprit = next(iter(self._unacked_topics.values()), None) or self._last_topic_sent
        try:
            self._set_will()
        except Exception as error:  # a payload builder's bug must not cost the back-off below
            self._warnings.warning(
                "MQTT: cannot build the last will, the previous one stays: %s",
                error,
                level=logging.ERROR,
                exc_info=True,
            )
        if was_connected and up_for >= self._backoff.stable_after_s:
            # A connection that lasted: the broker restarted, or the network blinked.
            self._backoff.stable()
            delay = self._next_wait(self._backoff.failed())
            self._warnings.warning(
                "MQTT: connection lost (%s); reconnecting in %.0f s, messages are kept",
                reason,
                delay,
            )
        elif was_connected:
            # Accepted, then closed again soon: the broker will do it again, so the
            # back-off goes on growing instead of starting again at reconnect_min_s.
            delay = self._next_wait(self._backoff.dropped())
            # The topic is an argument, not part of the text: the limiter then counts a drop
            # after any topic as a repeat of the same fault.
            if culprit is not None:
                self._warnings.warning(
                    "MQTT: the broker closed the connection after a publish to %s: check its"
                    " ACL (and its log); reconnecting with back-off (next try in %.0f s),"
                    " messages are kept",
                    culprit,
                    delay,
                )
            else:
                self._warnings.warning(
                    "MQTT: the broker closed the connection %.0f s after accepting it (%s);"
                    " check its log; reconnecting with back-off (next try in %.0f s),"
                    " messages are kept",
                    up_for,
                    reason,
                    delay,
                )
        else:
            # Closed before its CONNACK by a broker that accepted this login before: it is up
            # and hanging up on purpose, so this waits like a drop after accepting.
            hung_up = not refused and self._connects > 0
            delay = self._next_wait(self._backoff.dropped() if hung_up else self._backoff.failed())
            if refused:  # a refusal has said why already
                pass
            elif hung_up:
                # The same TLS settings and login were accepted before, so they are not why.
                self._note_error(
                    f"the broker closed the connection before accepting it ({reason}),"
                    " although it accepted this login before; check its log and its ACL"
                    f" (also for the last will's topic {self.availability_topic})",
                    retry_s=delay,
                )
            else:
                # With TLS 1.3 a missing or untrusted client certificate shows up only here:
                # the handshake "succeeds" and the broker hangs up before its CONNACK.
                self._note_error(
                    f"the connection closed before the broker accepted it ({reason}); check"
                    " the TLS certificates and the credentials",
                    retry_s=delay,
                )

    def _next_wait(self, delay: float) -> float:
        # paho waits min_delay before the next attempt when its own delay was reset, which
        # reconnect_delay_set does: so this sets exactly the next wait, and paho's reset on
        # every accepted connection no longer starts the back-off again.
        self._client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]
        return delay

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        # paho holds its message lock while calling this: only record the mid here and let
        # the sender thread touch the outbox.
        with self._topics_lock:
            topic = self._unacked_topics.pop(mid, None)
            if topic is None:
                if len(self._early_acks) > 1000:  # QoS 0 mids, never tracked: keep it bounded
                    self._early_acks.clear()
                self._early_acks.add(mid)
        if reason.is_failure:
            # MQTT 5 says why (0x87 Not authorized: the ACL). The message is not delivered;
            # the sender leaves it in the outbox.
            self._refused_mids.append(mid)
            self._warnings.warning(
                "MQTT: the broker refused a publish to %s (%s): check its ACL; not delivered,"
                " an outbox message stays in the outbox",
                topic or "?",
                reason,
            )
        else:
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

    def _on_log(self, _client: mqtt.Client, _userdata: object, level: int, text: str) -> None:
        # Only paho's errors: "Caught exception in on_...", which suppress_exceptions turns
        # into a log line instead of the end of the network thread.
        # Its socket errors are not forwarded: the disconnect that follows says it better.
        if level == mqtt.MQTT_LOG_ERR and text.startswith("Caught exception"):
            self._warnings.warning("MQTT: %s", text, level=logging.ERROR)

    def _note_error(self, text: str, retry_s: float | None = None) -> None:
        with self._wake:
            repeated = text == self._last_error
            self._last_error = text
        if repeated:
            return
        # The text is the key that the limiter counts repeats by, so the changing wait goes
        # in as an argument; a % in a topic name must not be taken for a placeholder.
        text = "MQTT: " + text.replace("%", "%%") + "; retrying with back-off"
        if retry_s is None:
            self._warnings.warning(text + ", messages are kept")
        else:
            self._warnings.warning(text + " (next try in %.0f s), messages are kept", retry_s)

    def _track(self, mid: int, topic: str) -> None:
        """Remember what `mid` was published to, until its PUBACK."""
        with self._topics_lock:
            if mid in self._early_acks:
                self._early_acks.discard(mid)
            else:
                self._unacked_topics[mid] = topic

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
            self._keep_network_thread()
            if not connected:
                continue
            try:
                self._publish_states(states, online=resend_all)
                self._drain()
            except Exception:
                # Never let the sender die: the outbox keeps everything; try again soon.
                self._warnings.warning(
                    "MQTT: publishing failed", level=logging.ERROR, exc_info=True
                )

    def _keep_network_thread(self) -> None:
        """paho's network thread ends on an exception outside our callbacks; telemetry would
        then be dead while the daemon runs on. loop_start() does nothing while it runs."""
        if self._client.loop_start() == mqtt.MQTT_ERR_SUCCESS:
            self._warnings.warning(
                "MQTT: the network thread had stopped (see the error above); started it again",
                level=logging.ERROR,
            )

    def _take_states(self, everything: bool) -> list[Message]:
        topics = list(self._states) if everything else [t for t in self._states if t in self._dirty]
        self._dirty.clear()
        return [self._states[topic] for topic in topics]

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand one message to paho; its mid, or None if MQTT cannot carry it (a bad topic,
        logged: it could never be sent, so retrying would only repeat the error)."""
        if qos > 0:
            self._last_topic_sent = topic
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as error:
            self._warnings.warning(
                "MQTT: cannot publish to %r: %s", topic[:80], error, level=logging.ERROR
            )
            return None
        if qos > 0:
            self._track(info.mid, topic)
        return info.mid

    def _publish_states(self, states: list[Message], *, online: bool) -> None:
        for state in states:
            self._publish(state.topic, state.payload, state.qos, state.retain)
        if online:
            self._publish(self.availability_topic, self.make_availability("online"), 1, True)

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
        mid = self._publish(message.topic, message.payload, message.qos, message.retain)
        self._after_seq = message.seq
        if mid is None:
            # It can never be sent: out of the outbox, so it does not come back every start.
            self.outbox.ack_many([message.seq])
            return
        # Even MQTT_ERR_NO_CONN keeps a QoS 1 message in paho's queue, sent after reconnect.
        # The mapping is written before this thread looks at acknowledgements again, so a
        # PUBACK that beats it here is not lost.
        self._seq_by_mid[mid] = message.seq

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
        refused = 0
        while self._refused_mids:
            # Refused (MQTT 5 reason code): out of the window, but not out of the outbox.
            self._seq_by_mid.pop(self._refused_mids.popleft(), None)
            refused += 1
        if refused:
            with self._wake:
                self._refused += refused

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
