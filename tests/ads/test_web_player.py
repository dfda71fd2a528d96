"""The web player and its kiosk page, rendered in real headless Chromium through Playwright
(the session's `browser`, tests/conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_agent.ads.players import make_player
from edge_agent.ads.players.base import NullPlayer, PlayerError, ShownReport
from edge_agent.ads.players.web import WebPlayer
from edge_agent.ads.values import Creative, MediaKind, PlayStart
from tests.support.paths import REPO

WAIT_MS = 10_000  # how long a page gets to do something before the test gives up

# BGR, as cv2 writes them.
COLOURS = {"red": (0, 0, 255), "green": (0, 200, 0), "blue": (255, 0, 0)}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 640, "height": 480})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


@dataclass(frozen=True)
class Media:
    images: dict[str, Creative]
    video: Creative
    broken: Creative


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("media")
    images = {}
    for name, bgr in COLOURS.items():
        path = folder / f"{name}.png"
        assert cv2.imwrite(str(path), np.full((240, 320, 3), bgr, dtype=np.uint8))
        images[name] = Creative(name, path, MediaKind.IMAGE, 5.0)
    video_path = folder / "clip.webm"
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"VP80"), 25.0, (320, 240))
    assert writer.isOpened()
    for i in range(50):
        frame = np.full((240, 320, 3), (40, 5 * i, 250 - 5 * i), dtype=np.uint8)
        cv2.putText(frame, str(i), (110, 150), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        writer.write(frame)
    writer.release()
    broken_path = folder / "broken.png"
    broken_path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    return Media(
        images=images,
        video=Creative("clip", video_path, MediaKind.VIDEO, 2.0),
        broken=Creative("broken", broken_path, MediaKind.IMAGE, 5.0),
    )


def play_of(creative: Creative) -> PlayStart:
    return PlayStart(
        play_id=uuid.uuid4().hex,
        creative=creative,
        rule_id="test-rule",
        started_wall=time.time(),
        reason=f"test shows {creative.creative_id}",
    )


@pytest.fixture
def reports() -> list[ShownReport]:
    return []


@pytest.fixture
def player(reports: list[ShownReport]) -> Iterator[WebPlayer]:
    player = WebPlayer(port=0, on_shown=reports.append)
    player.start()
    yield player
    player.close()


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def wait_shown(page: Any, play: PlayStart) -> None:
    page.wait_for_function(
        "id => document.body.dataset.playId === id", arg=play.play_id, polling="raf"
    )
    assert page.evaluate("document.body.dataset.creative") == play.creative.creative_id


def http_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(url: str, body: Any) -> int:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def centre_bgr(page: Any) -> np.ndarray:
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    height, width = shot.shape[:2]
    return shot[height // 2, width // 2].astype(int)


# Installed in the page: records, at every animation frame and after every DOM change, whether
# the screen shows media: some fully opaque layer holds media that can be drawn, and no layer
# that is at all visible is without it (its black background would dim or hide the picture).
# A false sample is a blank, dimmed or half-loaded frame.
SAMPLER = """() => {
  const drawable = (el) => el instanceof HTMLImageElement
      ? el.complete && el.naturalWidth > 0
      : el instanceof HTMLVideoElement && el.readyState >= 2;
  const hasMedia = (layer) => Array.from(layer.children).some(drawable);
  const opacity = (layer) => Number(getComputedStyle(layer).opacity);
  const onScreen = () => {
    const layers = Array.from(document.querySelectorAll('.layer'));
    return layers.some((layer) => opacity(layer) === 1 && hasMedia(layer))
        && layers.every((layer) => opacity(layer) === 0 || hasMedia(layer));
  };
  window.__frames = [];
  window.__mutations = [];
  window.__sampling = true;
  const tick = () => {
    window.__frames.push(onScreen());
    if (window.__sampling) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  new MutationObserver(() => window.__mutations.push(onScreen())).observe(
      document.body, {subtree: true, childList: true, attributes: true});
}"""


# --- tests ----------------------------------------------------------------------------------


def test_page_shows_the_current_play_on_connect(player: WebPlayer, page: Any, media: Media) -> None:
    play = play_of(media.images["red"])
    player.show(play)
    page.goto(player.url)
    wait_shown(page, play)
    assert np.abs(centre_bgr(page) - COLOURS["red"]).max() < 30
    assert page.evaluate("getComputedStyle(document.body).cursor") == "none"


def test_switch_reports_when_the_new_creative_is_visible(
    player: WebPlayer, page: Any, media: Media, reports: list[ShownReport]
) -> None:
    first, second = play_of(media.images["red"]), play_of(media.images["green"])
    player.show(first)
    page.goto(player.url)
    wait_shown(page, first)
    player.show(second)
    wait_shown(page, second)
    assert np.abs(centre_bgr(page) - COLOURS["green"]).max() < 30
    # The old element is gone once the new one is on screen.
    assert page.evaluate("document.querySelectorAll('.layer img, .layer video').length") == 1

    wait_until(lambda: any(r.play_id == second.play_id for r in reports))
    report = next(r for r in reports if r.play_id == second.play_id)
    assert report.creative_id == "green"
    assert report.latency_s >= 0
    assert report.shown_wall >= second.started_wall
    assert report.page_latency_ms is not None and report.page_latency_ms >= 0
    assert report.page_ready_ms is not None and report.page_ready_ms <= report.page_latency_ms
    assert report in player.shown
    assert {r.play_id for r in reports} == {first.play_id, second.play_id}


def test_a_video_creative_plays(player: WebPlayer, page: Any, media: Media) -> None:
    play = play_of(media.video)
    player.show(play)
    page.goto(player.url)
    wait_shown(page, play)
    video = page.locator(".layer.shown video")
    assert video.evaluate("v => v.muted && v.loop && !v.paused")
    start = video.evaluate("v => v.currentTime")
    page.wait_for_function(
        "t => { const v = document.querySelector('.layer.shown video');"
        " return v.readyState >= 2 && v.currentTime !== t; }",
        arg=start,
    )
    assert video.evaluate("v => v.readyState") >= 2


def test_switches_never_show_a_blank_frame(player: WebPlayer, page: Any, media: Media) -> None:
    order = [
        media.images["red"],
        media.images["green"],
        media.video,
        media.images["blue"],
        media.video,
        media.images["red"],
    ]
    first = play_of(order[0])
    player.show(first)
    page.goto(player.url)
    wait_shown(page, first)
    page.evaluate(SAMPLER)
    for creative in order[1:]:
        play = play_of(creative)
        player.show(play)
        wait_shown(page, play)
    # A quick burst: only the newest has to end up on screen, and nothing blank on the way.
    burst = [play_of(media.images[name]) for name in ("green", "blue", "red", "green")]
    for play in burst:
        player.show(play)
    wait_shown(page, burst[-1])
    page.evaluate("window.__sampling = false")
    frames = page.evaluate("window.__frames")
    mutations = page.evaluate("window.__mutations")
    assert len(frames) > len(order)  # the sampler ran through the fades
    assert mutations  # and saw the DOM change
    assert all(frames), f"{frames.count(False)} of {len(frames)} frames without visible media"
    assert all(mutations), f"{mutations.count(False)} DOM states without visible media"


def test_a_broken_creative_keeps_the_previous_one_on_screen(
    player: WebPlayer, page: Any, media: Media, reports: list[ShownReport]
) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    good, broken, after = (
        play_of(media.images["blue"]),
        play_of(media.broken),
        play_of(media.images["green"]),
    )
    player.show(good)
    page.goto(player.url)
    wait_shown(page, good)
    player.show(broken)
    page.wait_for_function("id => document.body.dataset.failedPlayId === id", arg=broken.play_id)
    assert page.evaluate("document.body.dataset.playId") == good.play_id
    assert np.abs(centre_bgr(page) - COLOURS["blue"]).max() < 30
    assert any("broken" in text for text in errors)
    # The page is not stuck on the failure: the next play shows as usual.
    player.show(after)
    wait_shown(page, after)
    wait_until(lambda: any(r.play_id == after.play_id for r in reports))
    assert broken.play_id not in {r.play_id for r in reports}


def test_http_routes(player: WebPlayer, media: Media) -> None:
    base = player.url.rstrip("/")
    assert http_status(f"{base}/api/now") == (200, b"null")
    play = play_of(media.video)
    player.show(play)

    status, body = http_status(f"{base}/api/now")
    now = json.loads(body)
    assert status == 200
    assert now["play_id"] == play.play_id
    assert now["kind"] == "video"
    assert now["url"].startswith("/media/clip?v=")
    assert {"rule_id", "reason", "started_wall", "creative_id"} <= now.keys()

    status, body = http_status(base + now["url"])
    assert status == 200 and body == media.video.path.read_bytes()
    # <video> seeks with Range requests.
    status, body = http_status(base + now["url"], {"Range": "bytes=10-19"})
    assert status == 206 and body == media.video.path.read_bytes()[10:20]

    assert http_status(f"{base}/media/red")[0] == 404  # exists on disk, never shown
    assert http_status(f"{base}/media/nope")[0] == 404
    assert http_status(f"{base}/media/..%2f..%2fetc%2fpasswd")[0] == 404
    assert http_status(f"{base}/media/%2e%2e")[0] == 404
    assert http_status(f"{base}/static/..%2fweb.py")[0] == 404
    assert http_status(f"{base}/static/kiosk.js")[0] == 200
    status, body = http_status(f"{base}/")
    assert status == 200 and b"kiosk.js" in body

    # Any creative id works in a URL: it is quoted there and looked up, never used as a path.
    odd = Creative("summer/sale 50%", media.images["red"].path, MediaKind.IMAGE, 5.0)
    player.show(play_of(odd))
    odd_url = json.loads(http_status(f"{base}/api/now")[1])["url"]
    assert odd_url.startswith("/media/summer%2Fsale%2050%25?v=")
    assert http_status(base + odd_url) == (200, odd.path.read_bytes())

    assert post_json(f"{base}/api/shown", {"play_id": "x"}) == 400
    assert post_json(f"{base}/api/shown", ["not", "an", "object"]) == 400
    assert post_json(f"{base}/api/shown", {"play_id": "x", "creative_id": "clip"}) == 404
    assert not player.shown


def test_a_play_shown_before_start_is_current_once_serving(media: Media) -> None:
    play = play_of(media.images["green"])
    player = WebPlayer(port=0)
    player.show(play)
    with player:
        status, body = http_status(f"{player.url}api/now")
        assert status == 200 and json.loads(body)["play_id"] == play.play_id


def test_the_event_stream_sends_keep_alive_pings(
    player: WebPlayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edge_agent.ads.players.web.PING_INTERVAL_S", 0.05)
    with urllib.request.urlopen(f"{player.url}events", timeout=5) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.read(15) == b"retry: 1000\r\n\r\n"
        assert stream.read(10) == b": ping\r\n\r\n"


def test_page_reconnects_after_a_player_restart(player: WebPlayer, page: Any, media: Media) -> None:
    before = play_of(media.images["red"])
    player.show(before)
    page.goto(player.url)
    wait_shown(page, before)
    port = player.port
    player.close()
    assert not player.running  # an open event stream does not hold the server up

    after = play_of(media.images["blue"])
    with WebPlayer(port=port) as again:
        again.show(after)
        wait_shown(page, after)


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        player = WebPlayer(port=port)
        with pytest.raises(PlayerError, match=f"port {port} on 127.0.0.1 is in use"):
            player.start()
        player.close()
        assert not player.running


def test_a_callback_error_is_logged_not_raised(
    page: Any, media: Media, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(report: ShownReport) -> None:
        raise ValueError("callback bug")

    with WebPlayer(port=0, on_shown=explode) as player:
        play = play_of(media.images["green"])
        player.show(play)
        page.goto(player.url)
        wait_shown(page, play)
        wait_until(lambda: bool(player.shown))
    assert "on_shown callback failed" in caplog.text


def test_null_player_remembers_the_current_play(media: Media) -> None:
    player = make_player("none")
    assert isinstance(player, NullPlayer)
    player.start()
    assert player.current is None
    play = play_of(media.images["red"])
    player.show(play)
    assert player.current is play
    player.close()
    with pytest.raises(ValueError, match="unknown player"):
        make_player("vlc")  # type: ignore[arg-type]


def test_the_none_player_does_not_import_aiohttp() -> None:
    code = (
        "import sys; from edge_agent.ads.players import make_player; make_player('none');"
        " assert 'aiohttp' not in sys.modules, 'aiohttp imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_page_follows_the_scheduler_decisions(page: Any, tmp_path: Path) -> None:
    """The whole ads stage: rules file -> decision -> web player -> what the browser shows."""
    from edge_agent.ads.reload import RulesWatcher
    from edge_agent.ads.stage import AdStage
    from tests.support.ads import BASE, person, write_rules

    rules = write_rules(
        tmp_path,
        "- {id: men, creatives: [t1], audience: {gender: male}}\n",
        head=BASE.replace("default_min_play_s: 2", "default_min_play_s: 0"),
    )
    starts: list[PlayStart] = []
    stage = AdStage(
        RulesWatcher(rules),
        WebPlayer(port=0),
        on_play_start=lambda play, decision: starts.append(play),
    )
    now = time.monotonic()
    stage.start(now, time.time())
    try:
        page.goto(stage.player.url)
        wait_shown(page, starts[-1])
        assert starts[-1].creative.creative_id == "a"  # nobody there: the default playlist
        stage.tick([person(1, "male", 40)], now + 0.5, time.time())
        assert starts[-1].rule_id == "men"
        wait_shown(page, starts[-1])
        assert page.evaluate("document.body.dataset.creative") == "t1"
    finally:
        stage.stop(time.monotonic(), time.time())
