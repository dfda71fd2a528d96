"""Home Assistant MQTT discovery: one retained discovery message per sensor of a display.

    <prefix>/sensor/edge_agent_<site>_<device>/<sensor>/config   (retained)

One message per component is the discovery every Home Assistant reads, old and new.
Device-based discovery (one message for the whole device, `<prefix>/device/...`) exists only
since Home Assistant 2024.11: older ones, among them 2024.3, the last release for Python 3.11,
ignore it, and a display would never appear (found by scripts/check_homeassistant.py). Each
message carries the same device block, origin and availability, and its own `unique_id`, so
renaming an entity in Home Assistant survives restarts. The sensors read our ordinary retained
state topics with `value_template`s, so there is one contract for every consumer, not a second
set of topics for Home Assistant.

Availability comes from our availability topic: `online` is available; `stopped` (clean
exit) and `offline` (the broker's last will) are both unavailable. Home Assistant announces
its own restarts on `<prefix>/status`; the client re-sends these messages and the states then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_agent import __version__
from edge_agent.segments import OTHER, segment_key
from edge_agent.telemetry.topics import Leaf, Topics

DEFAULT_PREFIX = "homeassistant"


def status_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """Where Home Assistant says `online` after it (re)starts."""
    return f"{prefix}/status"


def node_id(topics: Topics) -> str:
    # Home Assistant derives entity ids from this: letters, digits and underscores only.
    raw = f"edge_agent_{topics.site}_{topics.device}"
    return "".join(char if char.isalnum() else "_" for char in raw).lower()


def discovery_topic(topics: Topics, sensor: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/sensor/{node_id(topics)}/{sensor}/config"


@dataclass(frozen=True, slots=True)
class _Sensor:
    key: str  # the component id, and the end of its unique_id
    name: str
    leaf: Leaf
    field: str  # the payload field the sensor shows
    state_class: str | None = None
    unit: str | None = None
    icon: str | None = None
    diagnostic: bool = False
    device_class: str | None = None


def _sensors(segments: tuple[str, ...]) -> list[_Sensor]:
    sensors = [
        _Sensor(
            "viewers_now",
            "Viewers now",
            Leaf.AUDIENCE_CURRENT,
            "viewers_now",
            "measurement",
            "people",
            "mdi:eye",
        ),
        _Sensor(
            "present_now",
            "People in front",
            Leaf.AUDIENCE_CURRENT,
            "present",
            "measurement",
            "people",
            "mdi:account-group",
        ),
        _Sensor(
            "passers_by_today",
            "Passers-by today",
            Leaf.AUDIENCE_TODAY,
            "passers_by",
            "total_increasing",
            "people",
            "mdi:walk",
        ),
        _Sensor(
            "viewers_today",
            "Viewers today",
            Leaf.AUDIENCE_TODAY,
            "viewers",
            "total_increasing",
            "people",
            "mdi:eye-check",
        ),
    ]
    for segment in segments:
        key = segment_key(segment)
        label = segment.replace("/", " ").replace(OTHER, f"{OTHER} (small groups)")
        # "total", not "total_increasing": a small group folded into "other" earlier in the
        # day moves out of it once it reaches the threshold, so "other" may go down.
        sensors.append(
            _Sensor(
                f"passers_by_today_{key}",
                f"Passers-by today {label}",
                Leaf.AUDIENCE_TODAY,
                f"passers_by_{key}",
                "total",
                "people",
                "mdi:account-multiple",
            )
        )
    sensors += [
        _Sensor(
            "now_playing",
            "Now playing",
            Leaf.ADS_PLAYING,
            "creative_id",
            icon="mdi:television-play",
        ),
        _Sensor(
            "playing_reason", "Why it plays", Leaf.ADS_PLAYING, "reason", icon="mdi:help-circle"
        ),
        _Sensor(
            "fps",
            "Frames per second",
            Leaf.STATS,
            "fps",
            "measurement",
            "fps",
            "mdi:speedometer",
            True,
        ),
        _Sensor(
            "outbox_pending",
            "Messages waiting",
            Leaf.STATS,
            "outbox_pending",
            "measurement",
            "messages",
            "mdi:tray-full",
            True,
        ),
        _Sensor(
            "cpu_temperature",
            "CPU temperature",
            Leaf.STATS,
            "cpu_temperature_c",
            "measurement",
            "°C",
            None,
            True,
            "temperature",
        ),
    ]
    return sensors


def _template(field: str) -> str:
    if field.startswith("passers_by_"):
        # A segment not seen today is absent from the payload: 0, not an error.
        return f"{{{{ value_json.{field} | default(0) }}}}"
    # null renders as "None", which Home Assistant shows as unknown.
    return f"{{{{ value_json.{field} }}}}"


def discovery_messages(
    topics: Topics,
    *,
    segments: tuple[str, ...],
    device_name: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> dict[str, dict[str, Any]]:
    """Discovery topic -> payload, one per sensor. `segments`: the gender/bracket names a
    day's counts may have ("female/20-34", …, "other", "unknown"); each gets a "passers-by
    today" sensor."""
    node = node_id(topics)
    device = {
        "ids": [node],
        "name": device_name or f"edge-agent {topics.site} {topics.device}",
        "mf": "edge-agent",
        "mdl": "audience-aware signage display",
        "sw": __version__,
    }
    availability = [
        {
            "topic": topics.topic(Leaf.AVAILABILITY),
            "value_template": "{{ 'online' if value_json.state == 'online' else 'offline' }}",
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    messages: dict[str, dict[str, Any]] = {}
    for sensor in _sensors(segments):
        component: dict[str, Any] = {
            "unique_id": f"{node}_{sensor.key}",
            "name": sensor.name,
            "state_topic": topics.topic(sensor.leaf),
            "value_template": _template(sensor.field),
        }
        if sensor.state_class:
            component["state_class"] = sensor.state_class
        if sensor.unit:
            component["unit_of_measurement"] = sensor.unit
        if sensor.icon:
            component["icon"] = sensor.icon
        if sensor.device_class:
            component["device_class"] = sensor.device_class
        if sensor.diagnostic:
            component["entity_category"] = "diagnostic"
        component |= {
            "dev": device,
            "o": {"name": "edge-agent", "sw": __version__},
            "availability": availability,
            "qos": 1,
        }
        messages[discovery_topic(topics, sensor.key, prefix)] = component
    return messages
