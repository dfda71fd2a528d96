"""The MQTT side: `FleetFeed`, the paho-mqtt 2.x subscriber that feeds a `FleetModel`.

It subscribes in `on_connect` (so a reconnect resubscribes), reconnects with back-off on paho's
own thread and never publishes anything: the dashboard is a read-only observer and needs only
subscribe rights. Kept out of the model so that the model and the renderer are tested without a
broker; this is the only module of the dashboard that knows paho.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.commands.dashboard.model import FleetModel
from edge_agent.telemetry.client import new_paho_client
from edge_agent.telemetry.topics import fleet_subscription
from edge_agent.telemetry.values import DEFAULT_BASE, TlsSettings

# How long --once waits for the broker to accept the connection and the subscription, on top
# of the collection time. A refusal or an unreachable port ends the wait at once.
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


@dataclass(frozen=True, slots=True)
class FeedSettings:
    host: str
    port: int
    base_topic: str = DEFAULT_BASE
    site: str = "+"
    device: str = "+"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = field(default_factory=lambda: f"edge-agent-dashboard-{uuid.uuid4().hex[:8]}")

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" + (" (TLS)" if self.tls else "")

    @property
    def subscription(self) -> str:
        return fleet_subscription(self.base_topic, self.site, self.device)


class FleetFeed:
    """A read-only paho 2.x subscriber feeding a FleetModel from paho's network thread."""

    def __init__(
        self, settings: FeedSettings, model: FleetModel, *, reconnect: bool = True
    ) -> None:
        """reconnect=False (--once): a refused connection ends at once instead of after a
        back-off sleep that close() would have to wait out."""
        self.settings = settings
        self.model = model
        self._settled = threading.Condition()
        self._subscribed = False
        self._failure: str | None = None
        self._subscribe_mid: int | None = None
        tls = TlsSettings(settings.ca_file, settings.cert_file, settings.key_file)
        client = new_paho_client(
            settings.client_id,
            username=settings.username,
            password=settings.password,
            tls=tls if settings.tls else None,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
            reconnect_on_failure=reconnect,
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (live mode): failures show in the header and paho retries
        with back-off, so the render loop never waits on the network."""
        self._client.connect_async(self.settings.host, self.settings.port)
        self._client.loop_start()

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
        """Connect and subscribe now (--once); None when subscribed, else why not."""
        settings = self.settings
        try:
            self._client.connect(settings.host, settings.port)
        except (OSError, ValueError) as error:  # refused, unknown host, TLS handshake
            return f"cannot reach the MQTT broker at {settings.label}: {error}"
        self._client.loop_start()
        with self._settled:
            self._settled.wait_for(lambda: self._subscribed or self._failure, timeout_s)
            if self._subscribed:
                return None
            return self._failure or (
                f"the MQTT broker at {settings.label} did not accept the connection and the"
                f" subscription within {timeout_s:g} s"
            )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            hint = " (check --username/--password)" if "authori" in str(reason).lower() else ""
            self._fail(
                f"the MQTT broker at {self.settings.label} refused the connection: {reason}{hint}"
            )
            return
        # Subscribing here keeps the subscription across reconnects (clean sessions).
        _, self._subscribe_mid = client.subscribe(self.settings.subscription, qos=1)
        self.model.set_connection(True)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        _properties: object,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        if any(reason.is_failure for reason in reasons):
            self._fail(f"the MQTT broker refused the subscription to {self.settings.subscription}")
            return
        with self._settled:
            self._subscribed = True
            self._settled.notify_all()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._fail(f"cannot reach {self.settings.label}; retrying")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        with self._settled:
            subscribed = self._subscribed
        if not subscribed:
            # Closed before it let us in: typically a TLS client certificate or credentials
            # the broker wants (some brokers close instead of refusing in the CONNACK).
            self._fail(
                f"the MQTT broker at {self.settings.label} closed the connection before letting"
                f" the dashboard in: {reason} (check --username/--password and the TLS options)"
            )
        else:
            self.model.set_connection(False, f"connection lost ({reason}); reconnecting")

    def _fail(self, why: str) -> None:
        self.model.set_connection(False, why)
        with self._settled:
            # The first reason is the telling one: a refused CONNACK is followed by a disconnect.
            self._failure = self._failure or why
            self._settled.notify_all()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        self.model.handle(message.topic, bytes(message.payload), retained=bool(message.retain))
