"""`edge-agent dashboard`: real payloads through a real broker, read back as a person would.

The messages are built by `edge_agent.telemetry.payloads` from real values (an AudienceReport,
a PlayStart) and checked against the published JSON Schemas before they are sent, so the
dashboard is tested against the contract, not against a copy of it. The model and the renderer
are also tested on their own, fed messages directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console

from edge_agent.ads.values import Creative, MediaKind, PlayStart
from edge_agent.audience.values import AudienceReport, DurationStats
from edge_agent.commands import dashboard
from edge_agent.commands.dashboard import render
from edge_agent.commands.dashboard.model import FleetModel, Outcome
from edge_agent.segments import Brackets
from edge_agent.telemetry import payloads
from edge_agent.telemetry.topics import TOPICS, Leaf, Topics
from tests.support.mqtt_broker import free_port, make_client, publish
from tests.support.telemetry import problems

SITE, DEVICE = "berlin-mitte", "door-left"
DOOR = Topics(SITE, DEVICE)

# passers-by per segment, as the audience stage folds them (min_segment_size 2)
SEGMENTS = {
    "female/20-34": 6,
    "male/20-34": 3,
    "female/55+": 4,
    "male/35-54": 2,
    "other": 2,
    "unknown": 1,
}
VIEWER_SEGMENTS = {"female/20-34": 2, "male/20-34": 1, "other": 1}

STATS = {
    "interval_s": 30.0,
    "fps": 14.8,
    "faces_per_frame": 0.7,
    "classified_per_frame": 0.2,
    "detect_ms": 9.1,
    "track_ms": 0.2,
    "classify_ms": 3.3,
    "audience_ms": 0.1,
    "frames_skipped": 0,
    "reconnects": 0,
    "source_connected": True,
    "source_stalled": False,
    "cpu_temperature_c": 51.2,
    "uptime_s": 600.0,
    "outbox_pending": 7,
    "outbox_dropped": 0,
    "outbox_oldest_age_s": 1.5,
}


def audience_report(end_wall: float, segments: dict[str, int] = SEGMENTS) -> AudienceReport:
    return AudienceReport(
        window_start_wall=end_wall - 60.0,
        window_end_wall=end_wall,
        passers_by=sum(segments.values()),
        viewers=sum(VIEWER_SEGMENTS.values()),
        segments=dict(segments),
        viewer_segments=dict(VIEWER_SEGMENTS),
        dwell=DurationStats.of([1.5, 2.5, 4.0, 9.0]),
        attention=DurationStats.of([1.2, 3.4]),
        min_segment_size=2,
    )


def play_start(wall: float, creative_id: str = "summer-sale") -> PlayStart:
    return PlayStart(
        play_id="a" * 32,
        creative=Creative(creative_id, Path("/ads/summer.jpg"), MediaKind.IMAGE, 10.0),
        rule_id="women-young",
        started_wall=wall,
        reason="women 20-34 in front",
    )


def encoded(payload: dict) -> bytes:
    # Whatever the tests send must be a valid message of the contract.
    assert problems(payload) == [], problems(payload)
    return payloads.encode(payload)


def device_states(
    site: str, device: str, wall: float, *, state: str = "online", viewers_now: int = 2
) -> list[tuple[str, bytes]]:
    """The retained states a running device leaves on the broker."""
    topics = Topics(site, device)
    return [
        (
            topics.topic(Leaf.PRIVACY),
            encoded(payloads.privacy(site, device, wall, min_segment_size=2, window_s=60.0)),
        ),
        (
            topics.topic(Leaf.AUDIENCE_CURRENT),
            encoded(
                payloads.audience_current(site, device, wall, present=3, viewers_now=viewers_now)
            ),
        ),
        (
            topics.topic(Leaf.AUDIENCE_TODAY),
            encoded(
                payloads.audience_today(
                    site,
                    device,
                    wall,
                    date=dt.date.fromtimestamp(wall),
                    passers_by=153,
                    viewers=41,
                    segments={"female/20-34": 80, "male/20-34": 73},
                    viewer_segments={"female/20-34": 21, "male/20-34": 20},
                )
            ),
        ),
        (
            topics.topic(Leaf.ADS_PLAYING),
            encoded(payloads.ads_playing(site, device, wall, play_start(wall - 12))),
        ),
        (topics.topic(Leaf.STATS), encoded(payloads.stats(site, device, wall - 5, STATS))),
        (
            topics.topic(Leaf.AVAILABILITY),
            encoded(payloads.availability(state, site, device, wall - 180, wall - 200)),
        ),
    ]


def run_dashboard(*argv: str) -> int:
    """The way the CLI calls it: its options on a parser, then run()."""
    parser = argparse.ArgumentParser()
    dashboard.add_arguments(parser)
    return dashboard.run(parser.parse_args(list(argv)))


@pytest.fixture
def plain_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `--once > file` gets: no colours, 80 columns."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "EDGE_AGENT__MQTT__PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(dashboard.PASSWORD_ENVS[0], raising=False)
    monkeypatch.setenv("COLUMNS", "80")


@contextmanager
def publishing_repeatedly(broker, topic: str, payload: bytes) -> Iterator[None]:
    """Window reports are not retained: a dashboard sees one only if it is subscribed when the
    report is sent. Send the same message (same id) again and again, as a QoS 1 redelivery
    would, so the dashboard gets it whenever its subscription lands and drops the copies."""
    client = make_client(broker)
    client.connect(broker.host, broker.port)
    client.loop_start()
    stop = threading.Event()

    def repeat() -> None:
        while not stop.is_set():
            client.publish(topic, payload, qos=1)
            stop.wait(0.05)

    sender = threading.Thread(target=repeat, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join()
        client.disconnect()
        client.loop_stop()


def bar_cells(output: str, label: str) -> tuple[str, str]:
    """The (female, male) cells of one bracket's row, cut at the columns of their headings."""
    lines = output.splitlines()
    at = next(n for n, line in enumerate(lines) if re.search(r"\bage\s+female\s+male\b", line))
    female_at, male_at = lines[at].index("female"), lines[at].index(" male") + 1
    rows = [line for line in lines[at + 1 :] if line[:female_at].split()[-1:] == [label]]
    assert len(rows) == 1, f"one {label!r} row expected in:\n{output}"
    row = rows[0].rstrip("│ ")
    return row[female_at:male_at].strip(), row[male_at:].strip()


# --------------------------------------------------------------------------------------------
# Through a real broker


def test_once_shows_what_one_display_publishes(broker, capsys, plain_stdout) -> None:
    wall = time.time()
    publish(broker, device_states(SITE, DEVICE, wall), retain=True)
    publish(
        broker,
        [
            # garbage on a topic of ours, and a future schema version: ignored, not shown
            (Topics(SITE, "ghost").topic(Leaf.STATS), b"{not json"),
            (
                Topics(SITE, "future").topic(Leaf.STATS),
                json.dumps({**payloads.stats(SITE, "future", wall, STATS), "schema_version": 2}),
            ),
        ],
        retain=True,
    )
    report = encoded(payloads.audience_report(SITE, DEVICE, audience_report(wall - 30)))

    with publishing_repeatedly(broker, DOOR.topic(Leaf.AUDIENCE_REPORT), report):
        code = run_dashboard("--broker", f"{broker.host}:{broker.port}", "--once", "1.5")

    output = capsys.readouterr().out
    assert code == 0, output
    assert "\x1b[" not in output  # a plain snapshot: no colours, no cursor movement
    assert max(len(line) for line in output.splitlines()) <= 80
    assert f"{SITE}/{DEVICE}" in output
    assert "ghost" not in output and "future" not in output
    assert "devices 1/1 online" in output
    assert "2 ignored" in output
    assert "● online since 3 min ago" in output
    assert "2 viewers · 3 present" in output
    assert "153 passers-by · 41 viewers" in output
    assert "summer-sale · rule women-young · women 20-34 in front" in output
    assert "14.8 fps · outbox 7 waiting" in output
    assert "18 passers-by · 4 viewers" in output  # the window's totals

    # The bars: female and male side by side per bracket, brackets in age order, each with
    # its passers-by and (viewers); a segment folded away leaves its cell empty.
    assert bar_cells(output, "20-34") == ("████████████ 6 (2)", "██████ 3 (1)")
    assert bar_cells(output, "35-54") == ("", "████ 2")
    assert bar_cells(output, "55+") == ("████████ 4", "")
    assert bar_cells(output, "other") == ("████ 2 (1)", "")
    assert bar_cells(output, "unknown") == ("██ 1", "")
    labels = [line.split("│")[1].split()[0] for line in output.splitlines() if "█" in line]
    assert labels == ["20-34", "35-54", "55+", "other", "unknown"]
    assert "duplicates" in output  # the repeated report was shown once, its copies dropped


def test_once_with_a_fleet_is_one_line_per_device(broker, capsys, plain_stdout) -> None:
    wall = time.time()
    states: list[tuple[str, bytes]] = []
    for number in range(1, 10):
        state = {3: "stopped", 7: "offline"}.get(number, "online")
        states += device_states("hamburg", f"screen-{number:02d}", wall, state=state)
    publish(broker, states, retain=True)

    code = run_dashboard("--broker", f"{broker.host}:{broker.port}", "--once", "1")

    output = capsys.readouterr().out
    assert code == 0, output
    assert "devices 7/9 online" in output
    assert "not online: hamburg/screen-03 (stopped), hamburg/screen-07 (offline)" in output
    lines = output.splitlines()
    site_line = next(n for n, line in enumerate(lines) if line.strip() == "hamburg")
    device_lines = lines[site_line + 1 : site_line + 10]
    assert [line.split()[0] for line in device_lines] == [f"screen-{n:02d}" for n in range(1, 10)]
    for line in device_lines:
        assert re.search(r"\s14\.8\s+7\s+2/3\s+153/41\s+-\s+summer-sale", line), line
    assert re.search(r"screen-03\s+stopped 3m\s", output)
    assert re.search(r"screen-07\s+offline\s", output)  # the will found retained: no "since"
    assert "women 20-34 in front" not in output  # the compact table leaves reasons out
    assert len(lines) < 9 + 12


def test_once_with_device_filter_gets_the_detailed_panel(broker, capsys, plain_stdout) -> None:
    wall = time.time()
    publish(
        broker,
        device_states(SITE, DEVICE, wall) + device_states(SITE, "door-right", wall, viewers_now=0),
        retain=True,
    )

    code = run_dashboard(
        "--broker", f"{broker.host}:{broker.port}", "--device", "door-right", "--once", "1"
    )

    output = capsys.readouterr().out
    assert code == 0, output
    assert f"{SITE}/door-right" in output and DEVICE not in output
    assert "0 viewers · 3 present" in output
    assert f"{dashboard.DEFAULT_BASE}/+/door-right/#" in output
    assert "none received yet (one every 60 s)" in output  # privacy told the window length


def test_once_exits_2_when_nothing_listens(capsys, plain_stdout) -> None:
    port = free_port()
    started = time.monotonic()

    code = run_dashboard("--broker", f"127.0.0.1:{port}", "--once", "1")

    captured = capsys.readouterr()
    assert code == dashboard.EXIT_NO_BROKER
    assert f"cannot reach the MQTT broker at 127.0.0.1:{port}" in captured.err
    assert "refused" in captured.err.lower()
    assert captured.out == ""
    assert time.monotonic() - started < 3


def test_once_exits_2_when_the_broker_refuses_the_password(
    broker_factory, capsys, plain_stdout
) -> None:
    broker = broker_factory(users={"manager": "right-one"})
    address = f"{broker.host}:{broker.port}"

    code = run_dashboard(
        "--broker", address, "--username", "manager", "--password", "wrong", "--once", "1"
    )

    captured = capsys.readouterr()
    assert code == dashboard.EXIT_NO_BROKER
    assert f"the MQTT broker at {address} refused the connection" in captured.err
    assert "--username/--password" in captured.err


def test_password_from_the_environment(
    broker_factory, capsys, plain_stdout, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = broker_factory(users={"manager": "right-one"})
    wall = time.time()
    publish(
        broker,
        device_states(SITE, DEVICE, wall),
        retain=True,
        username="manager",
        password="right-one",
    )
    monkeypatch.setenv("EDGE_AGENT__MQTT__PASSWORD", "right-one")

    code = run_dashboard(
        "--broker", f"{broker.host}:{broker.port}", "--username", "manager", "--once", "1"
    )

    output = capsys.readouterr().out
    assert code == 0, output
    assert "2 viewers · 3 present" in output


def test_once_over_tls(broker_factory, capsys, plain_stdout) -> None:
    pytest.importorskip("trustme")
    broker = broker_factory(tls=True)
    publish(broker, device_states(SITE, DEVICE, time.time()), retain=True)

    code = run_dashboard(
        "--broker",
        f"localhost:{broker.tls_port}",
        "--tls",
        "--ca-file",
        str(broker.ca_file),
        "--once",
        "1",
    )

    output = capsys.readouterr().out
    assert code == 0, output
    assert f"localhost:{broker.tls_port} (TLS) connected" in output
    assert "devices 1/1 online" in output


# --------------------------------------------------------------------------------------------
# The model, fed directly


def feed(model: FleetModel, payload: dict, *, retained: bool = False, **kwargs) -> Outcome:
    leaf = {spec.message_type: spec.leaf for spec in TOPICS}[payload["type"]]
    topic = Topics(payload["site"], payload["device"]).topic(leaf)
    return model.handle(topic, encoded(payload), retained=retained, **kwargs)


def test_an_older_report_does_not_replace_a_newer_one() -> None:
    model = FleetModel()
    newer = payloads.audience_report(SITE, DEVICE, audience_report(1_795_000_120.0))
    older = payloads.audience_report(
        SITE, DEVICE, audience_report(1_795_000_060.0, {"female/20-34": 40})
    )

    assert feed(model, newer) is Outcome.ACCEPTED
    assert feed(model, older) is Outcome.OUT_OF_ORDER

    view = model.snapshot()
    window = view.devices[0].window
    assert window is not None and window.ts_ms == newer["ts_ms"]
    assert window.passers_by == 18
    assert (view.out_of_order, view.ignored) == (1, 0)


def test_a_duplicate_id_is_dropped() -> None:
    model = FleetModel()
    first = payloads.audience_current(SITE, DEVICE, 1_795_000_000.0, present=3, viewers_now=2)
    again_later = {**first, "ts_ms": first["ts_ms"] + 5000, "viewers_now": 0}

    assert feed(model, first) is Outcome.ACCEPTED
    assert feed(model, again_later) is Outcome.DUPLICATE

    view = model.snapshot()
    current = view.devices[0].current
    assert current is not None and current.viewers_now == 2
    assert (view.received, view.duplicates, view.ignored) == (2, 1, 0)


def _good_stats() -> dict:
    return payloads.stats(SITE, DEVICE, 1_795_000_000.0, STATS)


@pytest.mark.parametrize(
    ("topic", "raw"),
    [
        (DOOR.topic(Leaf.STATS), b"{not json"),
        (DOOR.topic(Leaf.STATS), b"\xff\xfe"),
        (DOOR.topic(Leaf.STATS), b"[1, 2]"),
        (DOOR.topic(Leaf.STATS), b"[" * 100_000),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "schema_version": 2}).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "schema_version": True}).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "type": "telepathy"}).encode()),
        (DOOR.topic(Leaf.AUDIENCE_CURRENT), json.dumps(_good_stats()).encode()),
        (Topics(SITE, "other-door").topic(Leaf.STATS), json.dumps(_good_stats()).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "fps": "fast"}).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "fps": True}).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "outbox_pending": -1}).encode()),
        (DOOR.topic(Leaf.STATS), json.dumps({**_good_stats(), "ts_ms": "now"}).encode()),
        (
            DOOR.topic(Leaf.AUDIENCE_REPORT),
            payloads.encode(
                {
                    **payloads.audience_report(SITE, DEVICE, audience_report(1_795_000_000.0)),
                    "passers_by_female_20_34": "six",
                }
            ),
        ),
        (f"{DOOR.root}/unheard/of", json.dumps(_good_stats()).encode()),
        ("somebody-else/x/y/stats", json.dumps(_good_stats()).encode()),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "json-list",
        "nested-too-deep",
        "schema-version-2",
        "schema-version-true",
        "unknown-type",
        "type-on-wrong-topic",
        "device-contradicts-topic",
        "text-for-number",
        "bool-for-number",
        "negative-count",
        "text-timestamp",
        "text-segment-count",
        "unknown-leaf",
        "foreign-base-topic",
    ],
)
def test_bad_input_is_ignored_and_counted(topic: str, raw: bytes) -> None:
    model = FleetModel()

    assert model.handle(topic, raw) is Outcome.IGNORED

    view = model.snapshot()
    assert (view.received, view.ignored, view.devices) == (1, 1, ())


def test_brackets_come_from_the_keys_in_age_order() -> None:
    # A device configured with other edges than the default: nothing here may assume them.
    labels = Brackets((5, 13, 100)).labels  # 0-4, 5-12, 13-99, 100+ (lexically 100+ < 13-99)
    segments = {f"{gender}/{label}": 2 for gender in ("female", "male") for label in labels}
    model = FleetModel()
    report = payloads.audience_report(SITE, DEVICE, audience_report(1_795_000_000.0, segments))
    feed(model, report)

    view = model.snapshot(now_ms=report["ts_ms"] + 90_000)
    window = view.devices[0].window
    assert window is not None
    assert {s.name for s in window.segments} == set(segments)
    console = Console(record=True, width=100, file=io.StringIO(), color_system=None)
    console.print(render.render(view))
    output = console.export_text()
    rows = [line.split("│")[1].split()[0] for line in output.splitlines() if "█" in line]
    assert rows == list(labels)
    assert "(1 min ago)" in output


def test_a_window_with_every_segment_folded_into_other() -> None:
    model = FleetModel()
    folded = audience_report(1_795_000_000.0, {"other": 3})
    feed(model, payloads.audience_report(SITE, DEVICE, folded))
    console = Console(record=True, width=80, file=io.StringIO(), color_system=None)

    console.print(render.render(model.snapshot()))

    output = console.export_text()
    assert re.search(r"other\s+█+ 3 \(1\)", output), output
    assert "female" not in output


def test_a_will_found_retained_has_no_since_and_a_live_one_is_taken_despite_its_old_ts() -> None:
    connected_wall = 1_795_000_000.0
    will = payloads.availability("offline", SITE, DEVICE, connected_wall, connected_wall)
    online = payloads.availability("online", SITE, DEVICE, connected_wall + 1, connected_wall)
    died_ms = round((connected_wall + 3600) * 1000)

    retained = FleetModel()
    feed(retained, will, retained=True)
    availability = retained.snapshot().devices[0].availability
    assert availability is not None and availability.since_ms is None

    live = FleetModel()
    feed(live, online)
    assert feed(live, will, received_ms=died_ms) is Outcome.ACCEPTED  # older ts, still news
    view = live.snapshot(now_ms=died_ms + 5000)
    device = view.devices[0]
    assert device.state == "offline" and view.online == 0
    console = Console(record=True, width=100, file=io.StringIO(), color_system=None)
    console.print(render.render(view))
    assert "● offline since 5 s ago" in console.export_text()


def test_a_hundred_devices_stay_one_line_each() -> None:
    model = FleetModel()
    wall = 1_795_000_000.0
    for number in range(100):
        site = f"store-{number // 10:02d}"
        for _topic, raw in device_states(site, f"screen-{number % 10}", wall):
            model.handle(_topic, raw)
    error = payloads.error(
        "store-04", "screen-2", wall, kind="rules_invalid", message="rules.yaml: bad key"
    )
    feed(model, error)

    view = model.snapshot(now_ms=round((wall + 200) * 1000))
    console = Console(record=True, width=140, file=io.StringIO(), color_system=None)
    console.print(render.render(view))
    lines = console.export_text().splitlines()
    assert len(view.devices) == 100 and view.online == 100
    assert len(lines) < 100 + 10 + 10  # a line per device, per site, and the header
    store_04 = lines.index(next(line for line in lines if line.strip() == "store-04"))
    row = lines[store_04 + 3]
    assert row.split()[0] == "screen-2"
    assert "rules_invalid 3m" in row and "summer-sale" in row and "2/3" in row


def test_the_layout_can_be_forced_either_way() -> None:
    model = FleetModel()
    for topic, raw in device_states(SITE, DEVICE, 1_795_000_000.0):
        model.handle(topic, raw)
    console = Console(record=True, width=100, file=io.StringIO(), color_system=None)

    console.print(render.render(model.snapshot(), layout="table"))
    as_table = console.export_text()
    console.print(render.render(model.snapshot(), layout="panels"))
    as_panels = console.export_text()

    assert "last error" in as_table and "╭" not in as_table
    assert f"╭─ {SITE}/{DEVICE}" in as_panels


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "just now"), (5, "5 s ago"), (59.9, "59 s ago"), (180, "3 min ago"),
     (7200, "2 h ago"), (3 * 86400, "3 d ago"), (-30, "30 s ahead")],
)  # fmt: skip
def test_ages_read_like_speech(seconds: float, text: str) -> None:
    assert render.ago(1_000_000, 1_000_000 + round(seconds * 1000)) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost", ("localhost", 1883)),
        ("broker.lan:1884", ("broker.lan", 1884)),
        ("[::1]:1885", ("::1", 1885)),
        ("::1", ("::1", 1883)),
    ],
)
def test_broker_addresses(value: str, expected: tuple[str, int]) -> None:
    assert dashboard.parse_broker(value) == expected


def test_tls_defaults_to_port_8883_and_bad_ports_are_refused() -> None:
    assert dashboard.parse_broker("broker.lan", tls=True) == ("broker.lan", 8883)
    with pytest.raises(ValueError, match="1 to 65535"):
        dashboard.parse_broker("broker.lan:99999")


def test_a_site_filter_must_be_one_topic_level() -> None:
    parser = argparse.ArgumentParser()
    dashboard.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--site", "berlin/#"])
