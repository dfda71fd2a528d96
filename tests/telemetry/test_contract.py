"""The MQTT contract without a broker: topics, payloads against their JSON Schemas, discovery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from jsonschema import Draft202012Validator

from edge_agent import segments
from edge_agent.ads.scheduler import AdScheduler
from edge_agent.telemetry import homeassistant, payloads, schema_files
from edge_agent.telemetry.topics import (
    SPECS,
    TOPICS,
    Leaf,
    Topics,
    parse_topic,
    render_topic_table,
)
from edge_agent.telemetry.values import DaemonStats
from tests.support.ads import BASE, person, table_with
from tests.support.paths import REPO
from tests.support.telemetry import mix, problems, report, schema, schema_names

WALL = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC).timestamp()
IDS = ("berlin-mitte", "door-left")


def test_every_topic_has_a_valid_schema_and_every_schema_a_topic():
    types = {spec.message_type for spec in TOPICS}
    assert types == set(schema_names()) - {"envelope"}
    ids = set()
    for name in schema_names():
        document = schema(name)
        Draft202012Validator.check_schema(document)
        ids.add(document["$id"])
        if name != "envelope":
            assert document["properties"]["type"] == {"const": name}
            assert document["unevaluatedProperties"] is False  # strict: drift fails the tests
    assert len(ids) == len(schema_names())


def test_records_and_states_follow_the_contract_table():
    for spec in TOPICS:
        assert spec.qos == 1
        if spec.importance is None:
            assert spec.retain, f"{spec.leaf} is a state, so it must be retained"
    # What must never be lost is a record, never a state kept only in memory.
    assert SPECS[Leaf.AUDIENCE_REPORT].importance.name == "REPORT"
    assert SPECS[Leaf.ADS_PLAY].importance.name == "REPORT"


def test_topics_read_like_a_path_and_parse_back():
    topics = Topics(*IDS)
    assert topics.topic(Leaf.AUDIENCE_REPORT) == "edge-agent/berlin-mitte/door-left/audience/report"
    for leaf in Leaf:
        assert parse_topic(topics.topic(leaf)) == (*IDS, leaf)
    assert parse_topic("edge-agent/a/b/unknown/leaf") is None
    assert parse_topic("other/a/b/stats") is None
    for bad in ("a/b", "+", "#", "", "-lead", "x" * 65, "spa ce"):
        with pytest.raises(ValueError, match="one MQTT topic level"):
            Topics(bad, "device")


def test_segment_keys_are_flat_field_names():
    assert segments.segment_key("female/20-34") == "female_20_34"
    assert segments.segment_key("male/55+") == "male_55_plus"
    assert segments.segment_key("other") == "other"
    flat = segments.flat_segments("passers_by", {"male/55+": 2, "unknown": 1})
    assert flat == {"passers_by_male_55_plus": 2, "passers_by_unknown": 1}


def test_audience_report_payload_is_flat_and_valid():
    value = report(WALL, 7, {"female/20-34": 5, "other": 2})
    payload = payloads.audience_report(*IDS, value)
    assert problems(payload) == []
    assert all(not isinstance(v, dict | list) for v in payload.values()), "must be flat"
    assert payload["passers_by_female_20_34"] == 5
    assert payload["passers_by_other"] == 2
    assert payload["window_end"] == "2026-11-23T18:00:00.000Z"
    assert payload["ts_ms"] == round(WALL * 1000)
    assert payload["window_s"] == 60.0
    # Each message is its own: a fresh id, and json that round-trips.
    again = payloads.audience_report(*IDS, value)
    assert again["id"] != payload["id"]
    assert json.loads(payloads.encode(payload)) == payload


def test_the_report_closing_a_mix_span_carries_the_span_flat_and_valid():
    hour = mix(WALL, {"female/20-34": 9, "male/35-54": 6, "other": 4})
    payload = payloads.audience_report(*IDS, report(WALL, 2, {"other": 2}, mix=hour))
    assert problems(payload) == []
    assert payload["mix_window_s"] == 3600.0
    assert payload["mix_window_start"] == "2026-11-23T17:00:00.000Z"
    assert payload["mix_passers_by"] == 19
    assert payload["mix_passers_by_female_20_34"] == 9 and payload["mix_passers_by_other"] == 4
    # Without a mix, no mix keys; a mix key alone breaks the contract.
    plain = payloads.audience_report(*IDS, report(WALL))
    assert not [key for key in plain if key.startswith("mix_")]
    assert problems({**plain, "mix_window_start": payload["mix_window_start"]})


def test_play_decision_and_playing_payloads_from_a_real_scheduler(tmp_path):
    table = table_with(
        tmp_path,
        "- {id: women, creatives: [t1], audience: {gender: female}, play: {min_s: 0}}\n",
        head=BASE.replace("minors: {playlist: [n]}", "minors: {protect: false}").replace(
            "default_min_play_s: 2", "default_min_play_s: 0"
        ),
    )
    scheduler = AdScheduler(table, min_segment_size=1)
    first = scheduler.tick([], 0.0, WALL)
    assert first.started is not None and first.decision is not None
    second = scheduler.tick([person(1, "female", 30)], 0.5, WALL + 0.5)
    assert second.ended is not None and second.started is not None
    end = scheduler.stop(1.0, WALL + 1.0)

    playing = payloads.ads_playing(*IDS, WALL, first.started)
    decision = payloads.ads_decision(*IDS, second.started, second.decision)
    play = payloads.ads_play(*IDS, end)
    for payload in (playing, decision, play):
        assert problems(payload) == [], payload
    assert decision["rule_id"] == "women" and decision["decision"] == "rule"
    assert play["rule_id"] == "women" and play["ended_by"] == "shutdown"
    woman_30 = segments.segment_name(segments.Gender.FEMALE, segments.DEFAULT_BRACKETS.of(30))
    assert play["people"] == 1 and play[f"people_{segments.segment_key(woman_30)}"] == 1
    assert playing["rule_id"] is None  # the default playlist


def test_state_payloads_are_valid():
    states = [
        payloads.availability("online", *IDS, WALL, WALL - 5),
        payloads.availability("offline", *IDS, WALL, WALL - 5),
        payloads.privacy(*IDS, WALL, min_segment_size=5, window_s=60),
        payloads.privacy(
            *IDS,
            WALL,
            min_segment_size=5,
            window_s=60,
            controller="Example Foods GmbH",
            contact="privacy@example-foods.de",
        ),
        payloads.audience_current(*IDS, WALL, present=2, viewers_now=1),
        payloads.audience_today(
            *IDS,
            WALL,
            date=dt.date(2026, 11, 23),
            passers_by=9,
            viewers=4,
            segments={"male/55+": 5, "other": 4},
            viewer_segments={"other": 4},
        ),
        payloads.error(*IDS, WALL, kind="rules_invalid", message="bad", file="r.yaml", line=3),
    ]
    for payload in states:
        assert problems(payload) == [], payload
    privacy, named = states[2], states[3]
    assert "5 people" in privacy["statement"] and privacy["images_sent"] is False
    assert privacy["controller"] is None and privacy["contact"] is None
    assert named["controller"] == "Example Foods GmbH"
    assert named["contact"] == "privacy@example-foods.de"
    # Added within version 1: a message from a display that predates them is still valid.
    assert problems({k: v for k, v in named.items() if k not in ("controller", "contact")}) == []


def test_the_schemas_reject_what_breaks_the_contract():
    good = payloads.audience_report(*IDS, report(WALL))
    assert problems({**good, "nested": {"a": 1}})  # unknown and not flat
    assert problems({**good, "passers_by": -1})
    assert problems({**good, "ts": "23.11.2026 18:00"})
    assert problems({k: v for k, v in good.items() if k != "id"})
    assert problems({**good, "passers_by_martian_1_2": 1})
    assert problems({**good, "type": "nonsense"})
    stats = payloads.stats(*IDS, WALL, {"fps": 10})
    assert any("required" in p for p in problems(stats))


def test_daemon_stats_are_published_as_they_are():
    stats = DaemonStats(
        interval_s=30.0,
        fps=9.5,
        faces_per_frame=1.2,
        classified_per_frame=0.05,
        detect_ms=3.1,
        track_ms=0.1,
        classify_ms=0.4,
        audience_ms=0.05,
        frames_skipped=12,
        reconnects=0,
        source_connected=True,
        source_stalled=False,
        cpu_temperature_c=None,
    )
    outbox = {
        "uptime_s": 60.0,
        "outbox_pending": 0,
        "outbox_dropped": 0,
        "outbox_oldest_age_s": None,
    }
    payload = payloads.stats(*IDS, WALL, {**dataclasses.asdict(stats), **outbox})
    assert problems(payload) == []
    # Every field of the value is a documented field of the message, under its own name.
    assert {"detect_ms": 3.1, "track_ms": 0.1, "fps": 9.5}.items() <= payload.items()
    assert {f.name for f in dataclasses.fields(DaemonStats)} <= set(schema("stats")["properties"])


def test_home_assistant_discovery_reads_only_fields_that_exist():
    topics = Topics(*IDS)
    segments = ("female/0-12", "male/55+", "other", "unknown")
    messages = homeassistant.discovery_messages(topics, segments=segments)
    node = homeassistant.node_id(topics)
    components = {c["unique_id"].removeprefix(f"{node}_"): c for c in messages.values()}
    assert homeassistant.discovery_topic(topics, "viewers_now") in messages
    assert len(components) == len(messages)
    assert node == "edge_agent_berlin_mitte_door_left"
    by_type = {spec.leaf: spec.message_type for spec in TOPICS}
    for key, component in components.items():
        leaf = parse_topic(component["state_topic"])[2]
        field = re.search(r"value_json\.(\w+)", component["value_template"]).group(1)
        document = schema(by_type[leaf])
        patterns = document.get("patternProperties", {})
        assert field in document["properties"] or any(re.match(p, field) for p in patterns), (
            f"{key} reads {field}, which {by_type[leaf]} does not have"
        )
        (availability,) = component["availability"]
        assert availability["topic"] == topics.topic(Leaf.AVAILABILITY)
        assert component["dev"]["ids"] == ["edge_agent_berlin_mitte_door_left"]
    assert components["viewers_now"]["state_class"] == "measurement"
    assert components["passers_by_today"]["state_class"] == "total_increasing"
    assert components["viewers_today"]["state_class"] == "total_increasing"
    assert "passers_by_today_male_55_plus" in components
    assert components["fps"]["entity_category"] == "diagnostic"


DOCS = REPO / "docs" / "mqtt.md"


def test_the_docs_list_every_topic_as_the_code_does():
    assert render_topic_table() in DOCS.read_text()


def test_every_payload_example_in_the_docs_follows_its_schema():
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    examples = [json.loads(block) for block in blocks]
    payload_examples = [e for e in examples if isinstance(e, dict) and "schema_version" in e]
    assert {e["type"] for e in payload_examples} >= {"audience_report", "ads_play", "error"}
    for example in payload_examples:
        assert problems(example) == [], example


@pytest.mark.parametrize("message_type", sorted(schema_files.SEGMENT_COUNTS))
def test_the_schemas_segment_counts_come_from_the_vocabulary(message_type):
    path = schema_files.schema_path(message_type)
    assert path.read_text(encoding="utf-8") == schema_files.render(message_type), (
        "run python -m edge_agent.telemetry.schema_files"
    )
    pattern = re.compile(next(iter(schema(message_type)["patternProperties"])))
    prefix = schema_files.SEGMENT_COUNTS[message_type][0]
    for brackets in (segments.DEFAULT_BRACKETS, segments.Brackets((18, 25, 35, 45, 55, 65))):
        for name in segments.segment_names(brackets):
            assert pattern.match(f"{prefix}_{segments.segment_key(name)}"), name
    assert not pattern.match(f"{prefix}_robot_20_34")
