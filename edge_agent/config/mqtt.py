"""The `mqtt` section: the broker, the topics, TLS and credentials, the outbox, Home Assistant."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator, model_validator

from edge_agent.config.base import ConfigModel, section, setting
from edge_agent.telemetry.values import (
    ID_RULE,
    base_topic_problem,
    discovery_prefix_problem,
    is_topic_id,
)


class MqttTlsConfig(ConfigModel):
    enabled: bool = setting(
        False,
        "TLS",
        "Encrypt the connection (usually port 8883) and check the broker's certificate.",
    )
    ca_file: Path | None = setting(
        None,
        "CA certificate",
        "PEM file of the CA that signed the broker's certificate; null: the system's trusted CAs.",
    )
    cert_file: Path | None = setting(
        None, "Client certificate", "PEM client certificate, for brokers that require one."
    )
    key_file: Path | None = setting(
        None, "Client key", "PEM private key of the client certificate."
    )
    verify_hostname: bool = setting(
        True,
        "Check the host name",
        "Check that the broker's certificate names `host`. Turn off only for a broker reached"
        " by an address its certificate does not list.",
    )


class HomeAssistantConfig(ConfigModel):
    discovery: bool = setting(
        True,
        "Discovery",
        "Announce this display and its sensors to Home Assistant (MQTT device discovery).",
    )
    prefix: str = setting(
        "homeassistant", "Discovery prefix", "Home Assistant's discovery prefix.", min_length=1
    )
    device_name: str | None = setting(
        None,
        "Device name",
        'The display\'s name in Home Assistant; null: "edge-agent SITE DEVICE".',
    )

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        problem = discovery_prefix_problem(value)
        if problem is not None:
            raise ValueError(f"the discovery prefix {problem}")
        return value


class MqttConfig(ConfigModel):
    enabled: bool = setting(
        True,
        "Enabled",
        "Publish anonymous counts, plays and health over MQTT. Messages wait in a file in"
        " `state.dir` until the broker has them, so an outage delays them but loses none.",
    )
    host: str = setting("localhost", "Broker host", "Name or address of the broker.", min_length=1)
    port: int = setting(
        1883, "Broker port", "1883 is plain MQTT, 8883 MQTT over TLS.", ge=1, le=65535
    )
    site: str = setting(
        "default",
        "Site",
        "The store: the second level of every topic (edge-agent/SITE/DEVICE/...).",
    )
    device: str | None = setting(
        None,
        "Device",
        "This display: the third topic level; null: this machine's host name.",
    )
    base_topic: str = setting(
        "edge-agent",
        "Base topic",
        "First level(s) of every topic; no + or #, no / at the end.",
    )
    client_id: str | None = setting(
        None,
        "Client id",
        "MQTT client id, unique per broker; null: edge-agent-SITE-DEVICE.",
        min_length=1,
    )
    username: str | None = setting(None, "User name", "null: connect without credentials.")
    password: str | None = setting(
        None,
        "Password",
        "Better kept out of this file: set EDGE_AGENT__MQTT__PASSWORD in the environment, or"
        " use password_file.",
    )
    password_file: Path | None = setting(
        None,
        "Password file",
        "A file holding the password (one line), e.g. a systemd credential:"
        " /run/credentials/edge-agent.service/mqtt-password. Used when `password` is null.",
    )
    tls: MqttTlsConfig = section(MqttTlsConfig, "TLS", "Encryption and certificates.")
    keepalive_s: int = setting(
        30,
        "Keep-alive",
        "Seconds between pings; the broker declares the display offline after 1.5 times this.",
        ge=5,
        le=3600,
    )
    reconnect_min_s: float = setting(
        1.0, "First reconnect delay", "Seconds before the first reconnect attempt.", gt=0
    )
    reconnect_max_s: float = setting(
        60.0, "Longest reconnect delay", "The delay doubles per failed attempt up to this.", gt=0
    )
    outbox_max_messages: int = setting(
        100_000,
        "Outbox size",
        "Messages kept while the broker is unreachable; over this, statistics go first, then"
        " events; reports and plays are never dropped.",
        ge=100,
    )
    outbox_max_mb: float = setting(
        200.0, "Outbox bytes", "Megabytes of messages kept, with the same policy.", gt=0
    )
    current_min_interval_s: float = setting(
        1.0,
        "Current audience rate",
        "Least seconds between two audience/current messages (sent when the numbers change).",
        ge=0,
    )
    homeassistant: HomeAssistantConfig = section(
        HomeAssistantConfig, "Home Assistant", "MQTT discovery for Home Assistant."
    )

    @field_validator("base_topic")
    @classmethod
    def _valid_base_topic(cls, value: str) -> str:
        problem = base_topic_problem(value)
        if problem is not None:
            raise ValueError(f"the base topic {problem}")
        return value

    @field_validator("site", "device")
    @classmethod
    def _one_topic_level(cls, value: str | None) -> str | None:
        if value is not None and not is_topic_id(value):
            raise ValueError(ID_RULE)
        return value

    @model_validator(mode="after")
    def _check_tls_files(self) -> MqttConfig:
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: set both or neither")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be less than reconnect_min_s")
        return self
