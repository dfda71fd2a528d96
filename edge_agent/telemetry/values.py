"""The plain values of the telemetry stage: its settings from the configuration, the rule
for topic ids, and the daemon's statistics it publishes.

Light on purpose (no paho): the configuration validates site and device ids with
`is_topic_id` and builds `TelemetrySettings` without loading the MQTT client.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from edge_agent.segments import DEFAULT_BRACKETS, Brackets

DEFAULT_BASE = "edge-agent"
# Site and device ids are one topic level each: no MQTT wildcards or separators, and nothing
# a shell or a Home Assistant entity id would stumble on.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID = re.compile(ID_PATTERN)
ID_RULE = (
    "must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit (it becomes"
    " one MQTT topic level)"
)


def is_topic_id(value: str) -> bool:
    return bool(_ID.match(value))


def check_id(value: str, what: str) -> str:
    """`value` if it can be one topic level, else ValueError saying why."""
    if not is_topic_id(value):
        raise ValueError(f"{what} {value!r} {ID_RULE}")
    return value


# MQTT writes a topic's length in two bytes: a longer topic makes the client library raise on
# its network thread, which would leave telemetry dead while the daemon runs on.
MAX_TOPIC_BYTES = 65_535
# A site or a device id is at most 64 ASCII characters (ID_RULE).
MAX_ID_BYTES = 64
# Room kept after <base>/<site>/<device>/ for the longest leaf (topics.Leaf), and after a
# discovery node id for the longest sensor key (homeassistant.py); tests keep both true.
MAX_LEAF_BYTES = 32
MAX_SENSOR_KEY_BYTES = 64


def topic_name_problem(topic: str) -> str | None:
    """Why `topic` cannot be published to (a topic name, not a filter), or None."""
    if not topic:
        return "must not be empty"
    if "+" in topic or "#" in topic:
        return "must not contain the wildcards + or #"
    if "\0" in topic:
        return "must not contain NUL characters"
    size = len(topic.encode("utf-8", "surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        return f"is {size:,} UTF-8 bytes long; MQTT allows at most {MAX_TOPIC_BYTES:,}"
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (it holds a lone surrogate)"
    return None


def prefix_problem(prefix: str, longest_suffix_bytes: int) -> str | None:
    """Why `prefix` cannot be the first level(s) of a topic that goes on with at most
    `longest_suffix_bytes` more ("/" included), or None."""
    if not prefix:
        return "must not be empty"
    if prefix.endswith("/"):
        return "must not end in /"
    problem = topic_name_problem(prefix)
    if problem is not None:
        return problem
    room = MAX_TOPIC_BYTES - longest_suffix_bytes
    size = len(prefix.encode("utf-8"))
    if size > room:
        return (
            f"is {size:,} UTF-8 bytes long; with the levels after it a topic would exceed"
            f" MQTT's {MAX_TOPIC_BYTES:,} bytes (at most {room:,} here)"
        )
    return None


def base_topic_problem(base: str) -> str | None:
    """Why `base` cannot be the base topic (the levels before <site>/<device>/...), or None."""
    return prefix_problem(base, 3 + 2 * MAX_ID_BYTES + MAX_LEAF_BYTES)


def discovery_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be Home Assistant's discovery prefix, or None. A prefix with + or #
    is a filter, not a topic: discovery could not be published under it."""
    node_id = len("edge_agent_") + 2 * MAX_ID_BYTES + 1
    return prefix_problem(prefix, len("/sensor/") + node_id + 1 + MAX_SENSOR_KEY_BYTES + 7)


def device_id_from_hostname(hostname: str | None = None) -> str:
    """This machine's host name as one topic level ("pi-door.local" -> "pi-door.local")."""
    name = hostname if hostname is not None else socket.gethostname()
    cleaned = "".join(char if char.isalnum() or char in "_.-" else "-" for char in name)
    cleaned = cleaned.lstrip("_.-")[:64]
    return cleaned or "display"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate, when the broker asks for one
    key_file: Path | None = None
    verify_hostname: bool = True


@dataclass(frozen=True, slots=True)
class LinkSettings:
    host: str = "localhost"
    port: int = 1883
    client_id: str = "edge-agent"
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    inflight: int = 100  # unacknowledged QoS 1 messages on the wire at once


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """Everything the telemetry stage needs from the configuration."""

    link: LinkSettings
    state_dir: Path  # the outbox and today's totals live here
    site: str = "default"
    device: str = "display"
    base_topic: str = DEFAULT_BASE
    outbox_max_messages: int = 100_000
    outbox_max_bytes: int = 200 * 1024 * 1024
    current_min_interval_s: float = 1.0
    # Home Assistant device discovery.
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    device_name: str | None = None  # None: "edge-agent SITE DEVICE"
    # What the retained privacy message promises.
    min_segment_size: int = 5
    window_s: float = 60.0
    controller: str | None = None
    contact: str | None = None
    # The segments a day's counts may have (Home Assistant gets one sensor each).
    brackets: Brackets = DEFAULT_BRACKETS


@dataclass(frozen=True, slots=True)
class DaemonStats:
    """One statistics window of the running daemon: logged and published as it is."""

    interval_s: float  # how long the window was
    fps: float
    faces_per_frame: float
    classified_per_frame: float  # faces that went through the age/gender models
    # Mean milliseconds per frame in each stage.
    detect_ms: float
    track_ms: float
    classify_ms: float
    audience_ms: float
    frames_skipped: int  # by the reader, since start: a newer frame replaced them
    reconnects: int  # of the source, since start
    source_connected: bool
    source_stalled: bool
    cpu_temperature_c: float | None  # None where the board does not say
