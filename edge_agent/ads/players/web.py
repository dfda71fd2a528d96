"""The `web` player: a small local web server and the kiosk page a full-screen browser shows.

The daemon calls `show(play)`; the server pushes the play to every open page over server-sent
events; the page loads the creative off screen, cross-fades to it and posts back once it is
fully visible, which becomes a `ShownReport` (decision-to-screen latency included).

    GET  /                  the kiosk page (kiosk/index.html)
    GET  /static/NAME       its script and style (only the files in kiosk/)
    GET  /events            server-sent events: the current play on connect, then each new one
    GET  /media/ID          the file of a creative that has been shown (Range requests work)
    GET  /api/now           the current play as JSON, or null
    POST /api/shown         {"play_id", "creative_id", "page_latency_ms"?, "page_ready_ms"?}

The server runs on its own daemon thread with its own asyncio loop, so the daemon's thread
never waits on a browser. It binds only to `host` (loopback by default): the screen's browser
runs on the same machine, and nothing here needs to be reachable from the shop's network.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import quote

from aiohttp import web
from aiohttp_sse import sse_response

from edge_agent.ads.players.base import PlayerError, ShownReport
from edge_agent.ads.values import PlayStart

__all__ = ["KIOSK_DIR", "PlayerError", "ShownReport", "WebPlayer", "event_payload"]

log = logging.getLogger(__name__)

KIOSK_DIR: Final = Path(__file__).with_name("kiosk")

# Comments on the event stream keep idle-timeout proxies and the browser from dropping it.
PING_INTERVAL_S: Final = 15.0
# How soon a page's EventSource reconnects after the stream ends (player restart).
RETRY_MS: Final = 1000
# Open event streams get this long to end before the server cancels them at close().
SHUTDOWN_TIMEOUT_S: Final = 0.5
START_TIMEOUT_S: Final = 10.0
KEEP_SHOWN: Final = 100
KEEP_PLAYS: Final = 100

# The page and its script revalidate on every load, so an upgraded player is picked up.
_REVALIDATE: Final = {"Cache-Control": "no-cache"}


def media_version(path: Path) -> str:
    """A short tag that changes when the file at `path` is replaced, so browsers refetch it."""
    try:
        st = path.stat()
        stamp = f"{st.st_mtime_ns}:{st.st_size}"
    except OSError as exc:
        # Still announced: the page fails to load it and keeps the previous creative on screen.
        log.warning("creative file %s cannot be read: %s", path, exc)
        stamp = "missing"
    return hashlib.sha256(f"{path}\0{stamp}".encode()).hexdigest()[:12]


def event_payload(play: PlayStart, version: str) -> dict[str, Any]:
    """What the page receives for one play (also the body of GET /api/now)."""
    creative = play.creative
    return {
        "play_id": play.play_id,
        "creative_id": creative.creative_id,
        "kind": str(creative.kind),
        "url": f"/media/{quote(creative.creative_id, safe='')}?v={version}",
        "rule_id": play.rule_id,
        "reason": play.reason,
        "started_wall": play.started_wall,
    }


class WebPlayer:
    """Serves the kiosk page and pushes each `show()` to it; see the module docstring.

    `on_shown` is called on the player's thread for each page report: keep it quick, and do not
    call back into the player from it except `show()`. Exceptions from it are logged, not
    raised. With several pages open (a kiosk and a preview), each one reports.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        on_shown: Callable[[ShownReport], None] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self.host = host
        self._requested_port = port
        self._on_shown = on_shown
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._bound_port: int | None = None
        self._closed = False
        # Set on the loop thread before _ready; read-only afterwards.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        # Everything below is guarded by _lock: show() writes from the daemon's thread,
        # handlers read on the loop thread. No await happens while it is held.
        self._lock = threading.Lock()
        self._current: PlayStart | None = None
        self._current_event: dict[str, Any] | None = None
        self._media: dict[str, Path] = {}
        self._plays: OrderedDict[str, PlayStart] = OrderedDict()
        self._shown: deque[ShownReport] = deque(maxlen=KEEP_SHOWN)
        # Loop-thread only: one wake-up per open event stream.
        self._streams: set[asyncio.Event] = set()

    # --- the caller's side -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the one picked by the OS when asked for 0), once started."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def running(self) -> bool:
        """True from start() until close() has ended the server thread."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def current(self) -> PlayStart | None:
        with self._lock:
            return self._current

    @property
    def shown(self) -> list[ShownReport]:
        """The last reports from pages, oldest first (a copy)."""
        with self._lock:
            return list(self._shown)

    def start(self) -> None:
        """Start serving; returns once the server listens. PlayerError if it cannot."""
        if self._thread is not None:
            raise RuntimeError("web player was already started")
        self._thread = threading.Thread(target=self._run, name="player-web", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise PlayerError(f"web player did not start within {START_TIMEOUT_S:.0f} s")
        error = self._start_error
        if error is None:
            log.info("web player serving the kiosk page at %s", self.url)
            return
        self._thread.join(1.0)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            raise PlayerError(
                f"port {self._requested_port} on {self.host} is in use: set ads.web.port"
            ) from error
        raise PlayerError(
            f"cannot listen on {self.host} port {self._requested_port}: {error}"
        ) from error

    def show(self, play: PlayStart) -> None:
        """Make `play` current and push it to every open page. Thread-safe; does not wait."""
        creative = play.creative
        version = media_version(creative.path)  # one stat(): cheap enough for the caller
        with self._lock:
            self._current = play
            self._current_event = event_payload(play, version)
            self._media[creative.creative_id] = creative.path
            self._plays[play.play_id] = play
            while len(self._plays) > KEEP_PLAYS:
                self._plays.popitem(last=False)
        loop = self._loop
        if loop is None or self._closed:
            return  # not serving (yet): a page that connects later gets it as current
        try:
            loop.call_soon_threadsafe(self._wake_streams)
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("web player is closed; play %s not pushed", play.play_id)

    def close(self) -> None:
        """Stop the server and its thread; open event streams are ended, not waited for."""
        if self._closed:
            return
        self._closed = True
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stopping.set)
        thread.join(SHUTDOWN_TIMEOUT_S + 2.0)
        if thread.is_alive():
            log.warning("web player thread still running after close(); it is a daemon thread")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the loop thread's side --------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        except BaseException as exc:  # reported to start(), never lost
            if not self._ready.is_set():
                self._start_error = exc
            else:
                log.exception("web player stopped unexpectedly")
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
            log.debug("web player thread ended")

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/events", self._events)
        app.router.add_get("/media/{creative_id}", self._media_file)
        app.router.add_get("/api/now", self._now)
        app.router.add_post("/api/shown", self._shown_report)
        # Every media fetch and range request would be an INFO line: too chatty for a daemon.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
            self._bound_port = runner.addresses[0][1]
            self._stopping = asyncio.Event()
            self._loop = loop
            self._ready.set()
            await self._stopping.wait()
        finally:
            self._wake_streams()  # with _closed set, every stream handler returns
            await runner.cleanup()

    def _wake_streams(self) -> None:
        for wake in self._streams:
            wake.set()

    def _current_payload(self) -> dict[str, Any] | None:
        with self._lock:
            return self._current_event

    # --- handlers ----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(KIOSK_DIR / "index.html", headers=_REVALIDATE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        # Only plain names of the files shipped in kiosk/: nothing from elsewhere on disk.
        if name != Path(name).name or not (KIOSK_DIR / name).is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(KIOSK_DIR / name, headers=_REVALIDATE)

    async def _media_file(self, request: web.Request) -> web.StreamResponse:
        # Only files registered by show(), looked up by id: a request never names a path.
        with self._lock:
            path = self._media.get(request.match_info["creative_id"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        # The URL carries a version tag that changes with the file, so caching is safe.
        return web.FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    async def _now(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._current_payload(), headers=_REVALIDATE)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        wake = asyncio.Event()
        async with sse_response(request, ping_interval=PING_INTERVAL_S) as stream:
            # Also sends the headers now, so the page's EventSource opens at once.
            await stream.write(f"retry: {RETRY_MS}\r\n\r\n".encode())
            self._streams.add(wake)
            gone = asyncio.ensure_future(stream.wait())  # ends when the page goes away
            sent: str | None = None
            try:
                while not self._closed and not gone.done():
                    wake.clear()
                    event = self._current_payload()
                    # Only the newest play matters: plays superseded while waiting are skipped.
                    if event is not None and event["play_id"] != sent:
                        await stream.send(json.dumps(event), id=event["play_id"])
                        sent = event["play_id"]
                    woken = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({woken, gone}, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
            except (ConnectionResetError, TimeoutError):
                log.debug("kiosk page %s went away", request.remote)
            finally:
                self._streams.discard(wake)
                gone.cancel()
        return stream

    async def _shown_report(self, request: web.Request) -> web.StreamResponse:
        shown_wall = time.time()
        try:
            body = await request.json()
            play_id = body["play_id"]
            creative_id = body["creative_id"]
            if not isinstance(play_id, str) or not isinstance(creative_id, str):
                raise TypeError("play_id and creative_id must be strings")
            page_latency_ms = _optional_ms(body.get("page_latency_ms"))
            page_ready_ms = _optional_ms(body.get("page_ready_ms"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"bad shown report: {exc}") from exc
        with self._lock:
            play = self._plays.get(play_id)
        if play is None or play.creative.creative_id != creative_id:
            # A page still showing a play from before a restart, or a stale tab: not ours.
            log.debug("shown report for unknown play %s (%s)", play_id, creative_id)
            raise web.HTTPNotFound(text="unknown play_id")
        report = ShownReport(
            play_id=play_id,
            creative_id=creative_id,
            shown_wall=shown_wall,
            latency_s=shown_wall - play.started_wall,
            page_latency_ms=page_latency_ms,
            page_ready_ms=page_ready_ms,
        )
        with self._lock:
            self._shown.append(report)
        if self._on_shown is not None:
            try:
                self._on_shown(report)
            except Exception:
                log.exception("on_shown callback failed for play %s", play_id)
        return web.Response(status=204)


def _optional_ms(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected milliseconds as a number, got {value!r}")
    return float(value)
