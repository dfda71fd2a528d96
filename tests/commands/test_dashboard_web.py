"""`edge-agent dashboard --web`: the real command in its own process, a real mosquitto, messages
of the contract published by the test, and the page rendered in real headless Chromium.

Every message is built by `edge_agent.telemetry.payloads` and checked against the published
JSON Schemas before it is sent (the helpers of test_dashboard.py). The screenshot of each run
is saved into the test's tmp folder (its path is printed: `pytest -s` shows it).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from edge_agent.ads.values import PlayAudience, PlayEnd, PlayEvent
from edge_agent.audience.values import AudienceMix
from edge_agent.commands import dashboard
from edge_agent.commands.dashboard.history import History
from edge_agent.commands.dashboard.model import FleetModel, Outcome
from edge_agent.commands.dashboard.web import PASSWORD_ENV, WebSetupError, web_settings
from edge_agent.telemetry import payloads
from edge_agent.telemetry.topics import Leaf, Topics
from tests.commands.test_dashboard import (
    DEVICE,
    SITE,
    audience_report,
    device_states,
    encoded,
)
from tests.support.mqtt_broker import free_port, publish
from tests.support.paths import REPO
from tests.support.polling import wait_until

WAIT_S = 15.0  # a generous guard against hangs on a loaded machine; no timing is asserted
OTHER_DEVICE = "door-right"


@dataclass
class Dashboard:
    process: subprocess.Popen[str]
    url: str
    password: str | None = None

    def request(self, path: str, password: str | None = None) -> tuple[int, bytes]:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"manager:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def state(self, scope: str = "") -> dict[str, Any]:
        status, body = self.request(f"/api/state?scope={scope}", self.password)
        assert status == 200, body
        return json.loads(body)


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "edge_agent.cli", "dashboard", *argv]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT_DASHBOARD")}
    # The subprocess imports this checkout's edge_agent, whatever the current directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def start_dashboard(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or environment(),
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as systemd stops it: the command ends cleanly (0) and says nothing on stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"the dashboard did not stop on SIGTERM: {stderr}")
    return process.returncode, stderr


def wait_serving(dashboard: Dashboard) -> None:
    def serving() -> bool:
        assert dashboard.process.poll() is None, dashboard.process.communicate()[1]
        try:
            return dashboard.request("/static/app.js", dashboard.password)[0] == 200
        except OSError:
            return False

    assert wait_until(serving, WAIT_S), "the dashboard did not start serving"


@pytest.fixture
def web_dashboard(broker) -> Iterator[Dashboard]:
    port = free_port()
    process = start_dashboard(
        "--web", "--broker", f"{broker.host}:{broker.port}", "--listen", f"127.0.0.1:{port}"
    )
    running = Dashboard(process, f"http://127.0.0.1:{port}/")
    try:
        wait_serving(running)
        yield running
    finally:
        code, stderr = stop(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1500})
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    yield page
    context.close()


def play_event(creative_id: str, ended_wall: float, people: dict[str, int], viewers: int) -> bytes:
    """An `ads/play` record, through the daemon's own types."""
    event = PlayEvent(
        play_id=os.urandom(16).hex(),
        creative_id=creative_id,
        rule_id="women-young",
        decision="rule",
        reason="test",
        started_wall=ended_wall - 10.0,
        ended_wall=ended_wall,
        duration_s=10.0,
        ended_by=PlayEnd.COMPLETED,
        rules_version="c56fe372e9c3",
        audience=PlayAudience(
            people=sum(people.values()),
            viewers=viewers,
            peak_people=sum(people.values()),
            attention_s=2.5 * viewers,
            segments=people,
        ),
    )
    return encoded(payloads.ads_play(SITE, DEVICE, event))


def today(wall: float, passers_by: int, viewers: int) -> bytes:
    return encoded(
        payloads.audience_today(
            SITE,
            DEVICE,
            wall,
            date=dt.date.fromtimestamp(wall),
            passers_by=passers_by,
            viewers=viewers,
            segments={"female/20-34": 80, "male/20-34": 73},
            viewer_segments={"female/20-34": 21, "male/20-34": 20},
        )
    )


def text(page: Any, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def wait_text(page: Any, selector: str, expected: str) -> float:
    """Wait until the element shows `expected`; the wall-clock time when it did."""
    page.wait_for_function(
        "([selector, expected]) => document.querySelector(selector)?.textContent.trim()"
        " === expected",
        arg=[selector, expected],
        polling="raf",
    )
    return time.time()


# --------------------------------------------------------------------------------------------
# The page in Chromium


def test_page_shows_what_the_fleet_publishes_and_keeps_updating(
    broker, web_dashboard: Dashboard, page: Any, tmp_path: Path
) -> None:
    wall = time.time()
    door = Topics(SITE, DEVICE)
    publish(broker, device_states(SITE, DEVICE, wall), retain=True)
    publish(
        broker,
        device_states(SITE, OTHER_DEVICE, wall, state="offline", viewers_now=1),
        retain=True,
    )
    # Retained states arriving prove the subscription is in place: from now on the dashboard
    # sees the records (not retained) the test publishes.
    assert wait_until(lambda: web_dashboard.state()["fleet"]["devices"] == 2, WAIT_S)

    report = audience_report(wall - 30)
    report_mix = AudienceMix(
        window_start_wall=wall - 3630,
        window_end_wall=wall - 30,
        passers_by=40,
        viewers=12,
        segments={"female/20-34": 22, "male/35-54": 18},
        viewer_segments={"female/20-34": 7, "male/35-54": 5},
    )
    report = replace(report, mix=report_mix)
    publish(
        broker,
        [
            (
                door.topic(Leaf.AUDIENCE_REPORT),
                encoded(payloads.audience_report(SITE, DEVICE, report)),
            ),
            (
                door.topic(Leaf.ADS_PLAY),
                play_event("summer-sale", wall - 20, {"female/20-34": 2}, 1),
            ),
            (door.topic(Leaf.ADS_PLAY), play_event("summer-sale", wall - 10, {"other": 3}, 2)),
            (door.topic(Leaf.ADS_PLAY), play_event("coffee-morning", wall - 5, {}, 0)),
            (
                door.topic(Leaf.EVENTS_ERROR),
                encoded(
                    payloads.error(
                        SITE,
                        DEVICE,
                        wall - 2,
                        kind="rules_invalid",
                        message="rules rejected: rules.yaml:14: gender: got 'women'",
                        file="rules.yaml",
                        line=14,
                    )
                ),
            ),
        ],
    )
    # The page opens after all that was published: it gets the history on open.
    assert wait_until(lambda: len(web_dashboard.state()["creatives"]) == 2, WAIT_S)
    page.goto(web_dashboard.url)

    wait_text(page, "#window-passers", "18")
    assert text(page, "#window-viewers") == "4"
    assert text(page, "#today-passers") == "306"  # 153 on each of the two displays
    assert text(page, "#today-viewers") == "82"
    assert text(page, "#fleet") == "1/2 online"
    # Only the online display is in front of anyone now.
    assert text(page, "#present-now") == "3"
    assert text(page, "#viewers-now") == "2"
    assert text(page, "#mix-passers") == "40"
    # The mixes, by gender x age bracket, as numbers beside their charts.
    window_mix = page.locator("#mix-window-table").inner_text()
    assert "female 20-34\t6 (2 viewers)" in window_mix
    assert "male 35-54\t2" in window_mix
    assert "female 55+\t4" in window_mix
    assert "female 20-34\t22 (7 viewers)" in page.locator("#mix-span-table").inner_text()
    assert "male 20-34\t146 (40 viewers)" in page.locator("#mix-today-table").inner_text()
    # Plays per creative, with their audience.
    sale = page.locator('#creatives tr[data-creative="summer-sale"] td')
    assert sale.all_inner_texts()[:6] == ["summer-sale", "2", "20 s", "5", "3", "7.5 s"]
    assert "female/20-34 2" in sale.nth(6).inner_text()
    assert (
        page.locator('#creatives tr[data-creative="coffee-morning"] td').nth(1).inner_text() == "1"
    )
    # Availability and errors.
    left = page.locator(f'#devices tr[data-device="{SITE}/{DEVICE}"] td')
    assert left.nth(1).inner_text() == "online"
    assert left.nth(3).inner_text() == "14.8"
    assert left.nth(7).inner_text() == "summer-sale"
    right = page.locator(f'#devices tr[data-device="{SITE}/{OTHER_DEVICE}"] td')
    assert right.nth(1).inner_text() == "offline"
    assert "rules_invalid: rules rejected: rules.yaml:14" in page.locator("#errors").inner_text()
    # The charts were drawn from the history, with what was published.
    drawn = page.evaluate("window.dashboard.chartUpdates")
    for chart in ("chart-audience", "chart-dwell", "chart-mix-window", "chart-mix-today"):
        assert drawn[chart], f"{chart} was never drawn"
    series = page.evaluate("window.dashboard.lastState.series")
    assert series["passers_by"] == [18] and series["viewers"] == [4]
    assert page.locator("#chart-audience canvas").count() == 1
    screenshot = tmp_path / "dashboard-web.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    # It keeps updating: a new window and a new day total appear without a reload.
    later = wall + 1
    second = audience_report(later, {"female/20-34": 5, "other": 2})
    published_at = time.time()
    publish(
        broker,
        [
            (
                door.topic(Leaf.AUDIENCE_REPORT),
                encoded(payloads.audience_report(SITE, DEVICE, second)),
            ),
            (door.topic(Leaf.AUDIENCE_TODAY), today(later, 160, 44)),
        ],
    )
    shown_at = wait_text(page, "#today-passers", "313")
    assert text(page, "#window-passers") == "7"
    print(f"published -> shown on the page: {shown_at - published_at:.2f} s")
    states = page.evaluate("window.dashboard.lastState")
    assert sum(states["series"]["passers_by"]) == 25  # both windows, in their time buckets

    # One site or one display: the same page for the scope chosen.
    page.select_option("#scope", f"{SITE}/{OTHER_DEVICE}")
    wait_text(page, "#fleet", "0/1 online")
    assert text(page, "#window-passers") == "0"
    assert page.locator("#creatives tbody tr").count() == 0
    page.screenshot(path=str(tmp_path / "dashboard-web-one-display.png"))


def test_a_burst_of_messages_reaches_the_page_at_most_once_a_second(
    broker, web_dashboard: Dashboard, page: Any
) -> None:
    wall = time.time()
    door = Topics(SITE, DEVICE)
    publish(broker, device_states(SITE, DEVICE, wall), retain=True)
    page.goto(web_dashboard.url)
    wait_text(page, "#fleet", "1/1 online")
    before = page.evaluate("window.dashboard.states")

    started = time.monotonic()
    for n in range(1, 41):  # 40 window reports over about 3 s, each a change to show
        report = audience_report(wall + n, {"female/20-34": n})
        publish(
            broker,
            [
                (
                    door.topic(Leaf.AUDIENCE_REPORT),
                    encoded(payloads.audience_report(SITE, DEVICE, report)),
                )
            ],
        )
        time.sleep(0.075)
    wait_text(page, "#window-passers", "40")
    elapsed = time.monotonic() - started
    states = page.evaluate("window.dashboard.states") - before
    updates = page.evaluate("window.dashboard.chartUpdates")
    # The server sends one state a second at most (plus the one pending at the start).
    assert 1 <= states <= elapsed + 2, (states, elapsed)
    assert len(updates["chart-audience"]) >= 2  # the charts did follow the burst
    for chart, times in updates.items():  # each chart is drawn once a second at most
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 999.9 for gap in gaps), (chart, gaps)


# --------------------------------------------------------------------------------------------
# Who may see it


def test_a_non_loopback_address_without_a_password_is_refused(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        command("--web", "--broker", "127.0.0.1:1", "--listen", f"0.0.0.0:{port}"),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=WAIT_S * 2,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs a password" in lines[0] and "--password-file" in lines[0], lines[0]
    assert PASSWORD_ENV in lines[0]


def test_with_a_password_a_request_without_it_gets_401(broker, tmp_path: Path) -> None:
    secret = tmp_path / "dashboard-password"
    secret.write_text("correct horse battery\n")
    port = free_port()
    process = start_dashboard(
        "--web",
        "--broker",
        f"{broker.host}:{broker.port}",
        "--listen",
        f"0.0.0.0:{port}",
        "--password-file",
        str(secret),
    )
    running = Dashboard(process, f"http://127.0.0.1:{port}/", password="correct horse battery")
    try:
        wait_serving(running)
        for path in ("/", "/events", "/api/state", "/static/uPlot.iife.min.js"):
            status, _ = running.request(path)
            assert status == 401, path
            assert running.request(path, password="wrong")[0] == 401, path
        assert running.request("/", password="correct horse battery")[0] == 200
        assert running.state()["connected"] in (True, False)
    finally:
        code, stderr = stop(process)
    assert code == 0, stderr


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dashboard.add_arguments(parser)
    return parser.parse_args(["--web", *argv])


@pytest.mark.parametrize(
    ("listen", "environ", "password"),
    [
        ("127.0.0.1:8080", {}, None),
        ("[::1]:8080", {}, None),
        ("localhost:8080", {}, None),
        ("0.0.0.0:8080", {PASSWORD_ENV: "from-env"}, "from-env"),
        ("127.0.0.1:8080", {PASSWORD_ENV: "asked-on-loopback-too"}, "asked-on-loopback-too"),
    ],
)
def test_where_a_password_is_needed_and_where_it_comes_from(
    listen: str, environ: dict[str, str], password: str | None
) -> None:
    assert web_settings(arguments("--listen", listen), environ).password == password


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:8080", ":8080", "192.168.1.20:8080", "[::]:8080", "dash.example:80"]
)
def test_every_other_address_needs_one(listen: str) -> None:
    with pytest.raises(WebSetupError, match="needs a password"):
        web_settings(arguments("--listen", listen), {})


def test_an_empty_or_missing_password_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(WebSetupError, match=f"--password-file {empty}: the file is empty"):
        web_settings(arguments("--listen", "0.0.0.0:1", "--password-file", str(empty)), {})
    missing = tmp_path / "missing"
    with pytest.raises(WebSetupError, match=f"--password-file {missing}: No such file"):
        web_settings(arguments("--password-file", str(missing)), {})


# --------------------------------------------------------------------------------------------
# The history the process keeps (fed through the model, as the feed does)


class FakeClock:
    def __init__(self, wall: float) -> None:
        self.wall = wall

    def __call__(self) -> float:
        return self.wall


def report_message(end_wall: float, segments: dict[str, int]) -> tuple[str, bytes]:
    report = audience_report(end_wall, segments)
    return (
        Topics(SITE, DEVICE).topic(Leaf.AUDIENCE_REPORT),
        encoded(payloads.audience_report(SITE, DEVICE, report)),
    )


def test_history_counts_each_window_once_even_late_and_forgets_after_its_hours() -> None:
    wall = 1_795_454_100.0  # a whole minute
    clock = FakeClock(wall)
    history = History(hours=1, bucket_s=60, clock=clock)
    model = FleetModel(listener=history)

    newer = report_message(wall - 5, {"female/20-34": 6})
    older = report_message(wall - 65, {"male/20-34": 4})  # an outbox replay, arriving late
    assert model.handle(*newer) is Outcome.ACCEPTED
    assert model.handle(*newer) is Outcome.DUPLICATE  # a QoS 1 redelivery: counted once
    assert model.handle(*older) is Outcome.OUT_OF_ORDER  # not shown as the last window...
    series = history.scope("").series
    assert [p.passers_by for p in series] == [4, 6]  # ...but in the history, in its minute
    assert history.scope(SITE).series == series == history.scope(f"{SITE}/{DEVICE}").series
    assert history.scope(f"{SITE}/{OTHER_DEVICE}").series == ()

    # A display whose clock runs an hour ahead: kept nowhere, counted.
    assert model.handle(*report_message(wall + 3600, {"female/20-34": 9})) is Outcome.ACCEPTED
    assert history.outside == 1
    assert sum(p.passers_by for p in history.scope("").series) == 10

    clock.wall += 3600 + 120  # past the hour the history keeps
    assert history.scope("").series == ()
    model.handle(*report_message(wall - 30, {"other": 2}))  # now older than the hour kept
    assert history.outside == 2
    assert history.scope("").series == ()


def test_plays_are_summed_per_creative_with_their_audience() -> None:
    wall = time.time()
    history = History(hours=1)
    model = FleetModel(listener=history)
    door = Topics(SITE, DEVICE)
    for people, viewers in (({"female/20-34": 2}, 1), ({"female/20-34": 3, "other": 1}, 2)):
        play = play_event("summer-sale", wall - 10, people, viewers)
        assert model.handle(door.topic(Leaf.ADS_PLAY), play) is Outcome.ACCEPTED
    (sale,) = history.scope("").creatives
    assert (sale.creative_id, sale.plays, sale.people, sale.viewers) == ("summer-sale", 2, 6, 3)
    assert sale.attention_s == 7.5 and sale.duration_s == 20.0
    assert sale.segments == (("female/20-34", 5), ("other", 1))
