"""Home Assistant discovery as every Home Assistant reads it, from a real stage on a real broker.

Device-based discovery (`<prefix>/device/<node>/config`) exists only since Home Assistant
2024.11; 2024.3 (the last release for Python 3.11) ignored it and never showed the display
(scripts/check_homeassistant.py, run against it). One message per component,
`<prefix>/<component>/<node>/<object>/config`, is read by every version.
"""

from __future__ import annotations

import dataclasses
import json
import re

from edge_agent.config import load_config
from edge_agent.telemetry.stage import TelemetryStage
from edge_agent.telemetry.topics import Leaf, Topics
from tests.support.mqtt_broker import Collector

SITE, DEVICE = "berlin-mitte", "door-left"
NODE = "edge_agent_berlin_mitte_door_left"
# Home Assistant's own discovery topic pattern (homeassistant/components/mqtt/discovery.py,
# TOPIC_MATCHER in 2024.3 and still in 2025): component, optional node id, object id.
HA_TOPIC = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
# The discovery needs only sensors; a component name a 2024.3 Home Assistant did not know
# ("device") makes it drop the message.
KNOWN_BEFORE_2024_11 = {"sensor", "binary_sensor"}


def discovery_on_the_broker(broker, tmp_path, prefix: str) -> dict[str, dict]:
    collector = Collector(broker, [f"{prefix}/#", Topics(SITE, DEVICE).topic(Leaf.AVAILABILITY)])
    assert collector.wait_connected()
    environ = {
        "EDGE_AGENT__MQTT__HOST": broker.host,
        "EDGE_AGENT__MQTT__PORT": str(broker.port),
        "EDGE_AGENT__MQTT__SITE": SITE,
        "EDGE_AGENT__MQTT__DEVICE": DEVICE,
        "EDGE_AGENT__MQTT__HOMEASSISTANT__PREFIX": prefix,
    }
    config = load_config(None, environ=environ)
    settings = dataclasses.replace(config.telemetry_settings(), state_dir=tmp_path)
    stage = TelemetryStage(settings)
    stage.start()
    collector.wait_for_messages(1, Topics(SITE, DEVICE).topic(Leaf.AVAILABILITY))
    stage.stop()
    collector.close()
    return {
        m.topic: json.loads(m.payload)
        for m in collector.messages(f"{prefix}/#")
        if m.topic != f"{prefix}/status"
    }


def test_every_discovery_message_is_one_component_that_any_home_assistant_reads(broker, tmp_path):
    messages = discovery_on_the_broker(broker, tmp_path, "ha-discovery")
    assert len(messages) >= 10
    for topic, payload in messages.items():
        match = HA_TOPIC.fullmatch(topic.removeprefix("ha-discovery/"))
        assert match, topic
        assert match["component"] in KNOWN_BEFORE_2024_11, topic
        assert match["node_id"] == NODE
        assert payload["unique_id"] == f"{NODE}_{match['object_id']}"
        # Complete on its own: what it reads, its device, and when it is available.
        assert payload["state_topic"].startswith(f"edge-agent/{SITE}/{DEVICE}/")
        assert payload["dev"]["ids"] == [NODE]
        assert payload["availability"][0]["topic"].endswith("/availability")
        assert "cmps" not in payload
    names = [p["name"] for p in messages.values()]
    assert len(set(names)) == len(names)
    assert {p["dev"]["name"] for p in messages.values()} == {"edge-agent berlin-mitte door-left"}


def test_the_topic_budgets_hold_for_every_leaf_and_sensor():
    # values.py checks the configured base topic and discovery prefix against these budgets;
    # a longer leaf or sensor key would let a topic past MQTT's 65,535 bytes through.
    from edge_agent.segments import DEFAULT_BRACKETS, segment_names
    from edge_agent.telemetry.homeassistant import discovery_messages, node_id
    from edge_agent.telemetry.values import MAX_ID_BYTES, MAX_LEAF_BYTES, MAX_SENSOR_KEY_BYTES

    assert max(len(leaf.value.encode()) for leaf in Leaf) <= MAX_LEAF_BYTES
    longest = Topics("s" * MAX_ID_BYTES, "d" * MAX_ID_BYTES)
    segments = segment_names(DEFAULT_BRACKETS)
    prefix = f"homeassistant/sensor/{node_id(longest)}/"
    for topic in discovery_messages(longest, segments=segments):
        sensor = topic.removeprefix(prefix).removesuffix("/config")
        assert len(sensor.encode()) <= MAX_SENSOR_KEY_BYTES, topic
