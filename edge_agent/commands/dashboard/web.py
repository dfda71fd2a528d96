"""`edge-agent dashboard --web`: the same fleet as the terminal view, as a page with charts.

    GET /                  the page (web/index.html)
    GET /static/NAME       its script, style and the vendored uPlot (only files in web/static/)
    GET /api/state?scope=  the page's state as JSON: the fleet, a site or one device
    GET /events?scope=     server-sent events: that state at once, then again whenever it
                           changed, at most once per UPDATE_INTERVAL_S (1 s)

The process subscribes to the broker like the terminal view (`FleetFeed` -> `FleetModel`), and
`History` keeps what is not retained (windows, plays, errors) in time buckets, so a page opened
later still gets the last hours. Every page of one scope gets the same state, built at most
once per change.

It binds 127.0.0.1 by default. Any other address needs a password (`--password-file`, or
$EDGE_AGENT_DASHBOARD_WEB_PASSWORD), asked for with HTTP Basic (any user name); without one it
refuses to start. With a password on loopback, it is asked for too. Basic sends the password
in clear text on every request: beyond a trusted network, put a TLS proxy in front.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import errno
import hmac
import ipaddress
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from aiohttp_sse import sse_response

from edge_agent.commands.dashboard.feed import FeedSettings, FleetFeed
from edge_agent.commands.dashboard.history import (
    FLEET,
    History,
    ScopeHistory,
    in_scope,
    sum_segments,
)
from edge_agent.commands.dashboard.model import DeviceView, FleetModel, FleetView, Segment
from edge_agent.segments import bracket_order

log = logging.getLogger(__name__)

WEB_DIR: Final = Path(__file__).with_name("web")
STATIC_DIR: Final = WEB_DIR / "static"
DEFAULT_LISTEN: Final = "127.0.0.1:8080"
PASSWORD_ENV: Final = "EDGE_AGENT_DASHBOARD_WEB_PASSWORD"
# One state per page per second at most: each chart is redrawn at most once a second, however
# many displays publish.
UPDATE_INTERVAL_S: Final = 1.0
PING_INTERVAL_S: Final = 15.0
RETRY_MS: Final = 2000
SHUTDOWN_TIMEOUT_S: Final = 0.5
ERRORS_SHOWN: Final = 20
_REVALIDATE: Final = {"Cache-Control": "no-cache"}


class WebSetupError(ValueError):
    """A bad --listen, a missing password: one line for the user."""


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str
    port: int
    password: str | None
    history_hours: float

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080', '[::1]:8080', ':8080' (all addresses) -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, port_text = text[1:].partition("]:")
    else:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WebSetupError(f"--listen {value!r}: expected HOST:PORT with a port from 0 to 65535")
    return host or "0.0.0.0", int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def web_settings(args: argparse.Namespace, environ: dict[str, str]) -> WebSettings:
    host, port = parse_listen(args.listen)
    password = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().strip()
        except OSError as error:
            raise WebSetupError(
                f"--password-file {args.password_file}: {error.strerror or error}"
            ) from None
        if not password:
            raise WebSetupError(f"--password-file {args.password_file}: the file is empty")
    elif environ.get(PASSWORD_ENV):
        password = environ[PASSWORD_ENV]
    if password is None and not is_loopback(host):
        raise WebSetupError(
            f"--listen {args.listen}: a page reachable from other machines needs a password"
            f" (--password-file FILE or ${PASSWORD_ENV}); or listen on 127.0.0.1"
        )
    return WebSettings(host, port, password, args.history_hours)


# --------------------------------------------------------------------------------------------
# The page's state: a pure function of the model's snapshot and the history


def _segments_json(segments: tuple[Segment, ...]) -> list[dict[str, Any]]:
    ordered = sorted(
        segments,
        key=lambda s: (s.gender is None, s.bracket_order, s.gender or "", s.name),
    )
    return [
        {
            "name": s.name,
            "gender": s.gender,
            "bracket": s.bracket,
            "passers_by": s.passers_by,
            "viewers": s.viewers,
        }
        for s in ordered
    ]


def _device_json(device: DeviceView) -> dict[str, Any]:
    availability, health, current = device.availability, device.health, device.current
    today, playing, window, error = device.today, device.playing, device.window, device.last_error
    return {
        "name": device.name,
        "state": device.state,
        "since_ms": availability.since_ms if availability else None,
        "version": availability.version if availability else None,
        "fps": health.fps if health else None,
        "stats_ms": health.ts_ms if health else None,
        "outbox_pending": health.outbox_pending if health else None,
        "source_connected": health.source_connected if health else None,
        "present": current.present if current else None,
        "viewers_now": current.viewers_now if current else None,
        "today_passers_by": today.passers_by if today else None,
        "today_viewers": today.viewers if today else None,
        "playing": playing.creative_id if playing else None,
        "playing_rule": playing.rule_id if playing else None,
        "last_window_ms": window.ts_ms if window else None,
        "last_error": (
            {"ts_ms": error.ts_ms, "kind": error.kind, "message": error.message} if error else None
        ),
    }


def page_state(view: FleetView, history: ScopeHistory, scope: str) -> dict[str, Any]:
    """What one page shows, as JSON-ready values (the page does no arithmetic of its own)."""
    devices = [d for d in view.devices if in_scope(scope, d.site, d.device)]
    todays = [d.today for d in devices if d.today is not None]
    windows = [d.window for d in devices if d.window is not None]
    # Who is in front now: only displays that are online say so; an offline one's last value
    # is history.
    currents = [d.current for d in devices if d.current is not None and d.state == "online"]
    mixes = history.mixes
    # One set of brackets for the three mixes, so that their bars line up.
    groups = [t.segments for t in todays] + [w.segments for w in windows]
    groups += [m.segments for m in mixes]
    brackets = {s.bracket for group in groups for s in group if s.bracket}
    return {
        "taken_ms": view.taken_ms,
        "broker": view.broker,
        "connected": view.connected,
        "connection_note": view.connection_note,
        "received": view.received,
        "ignored": view.ignored,
        "scope": scope,
        "sites": sorted({d.site for d in view.devices}),
        "all_devices": [d.name for d in view.devices],
        "bucket_s": history.bucket_s,
        "history_hours": history.hours,
        "fleet": {
            "devices": len(devices),
            "online": sum(d.state == "online" for d in devices),
            "present": sum(c.present for c in currents),
            "viewers_now": sum(c.viewers_now for c in currents),
        },
        "series": {
            "t": [point.start_ms // 1000 for point in history.series],
            "passers_by": [point.passers_by for point in history.series],
            "viewers": [point.viewers for point in history.series],
            "dwell_mean_s": [point.dwell_mean_s for point in history.series],
            "attention_mean_s": [point.attention_mean_s for point in history.series],
        },
        "today": {
            "dates": sorted({t.date for t in todays}),
            "passers_by": sum(t.passers_by for t in todays),
            "viewers": sum(t.viewers for t in todays),
            "segments": _segments_json(sum_segments([t.segments for t in todays])),
        },
        "window": {
            "windows": len(windows),
            "end_ms": max((w.ts_ms for w in windows), default=None),
            "passers_by": sum(w.passers_by for w in windows),
            "viewers": sum(w.viewers for w in windows),
            "segments": _segments_json(sum_segments([w.segments for w in windows])),
        },
        "mix": {
            "spans": len(mixes),
            "end": max((m.window_end for m in mixes), default=None),
            "passers_by": sum(m.passers_by for m in mixes),
            "viewers": sum(m.viewers for m in mixes),
            "segments": _segments_json(sum_segments([m.segments for m in mixes])),
        },
        "brackets": sorted(brackets, key=bracket_order),
        "creatives": [
            {
                "creative_id": c.creative_id,
                "plays": c.plays,
                "duration_s": round(c.duration_s, 1),
                "people": c.people,
                "viewers": c.viewers,
                "attention_s": round(c.attention_s, 1),
                "segments": [list(pair) for pair in c.segments[:4]],
            }
            for c in history.creatives
        ],
        "devices": [_device_json(d) for d in devices],
        "errors": [
            {
                "device": name,
                "ts_ms": e.ts_ms,
                "kind": e.kind,
                "message": e.message,
                "file": e.file,
                "line": e.line,
            }
            for name, e in history.errors[:ERRORS_SHOWN]
        ],
    }


# --------------------------------------------------------------------------------------------
# The server


class StateCache:
    """The page state per scope, rebuilt only when a message changed something."""

    def __init__(self, model: FleetModel, history: History) -> None:
        self.model = model
        self.history = history
        self._built: dict[str, tuple[int, str]] = {}

    def version(self) -> int:
        return self.model.changes

    def state_json(self, scope: str) -> tuple[int, str]:
        version = self.version()
        cached = self._built.get(scope)
        if cached is not None and cached[0] == version:
            return cached
        state = page_state(self.model.snapshot(), self.history.scope(scope), scope)
        built = (version, json.dumps(state, separators=(",", ":")))
        self._built[scope] = built
        if len(self._built) > 256:  # scopes a page asked for once; keep the cache small
            self._built = {scope: built}
        return built


def _check_scope(request: web.Request) -> str:
    scope = request.query.get("scope", FLEET)
    if len(scope) > 200 or scope.count("/") > 1:
        raise web.HTTPBadRequest(text="scope: expected SITE or SITE/DEVICE")
    return scope


def basic_auth(password: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = password.encode()

    @web.middleware
    async def check(request: web.Request, handler: Callable) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        given = b""
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, ValueError):
                given = base64.b64decode(encoded, validate=True).partition(b":")[2]
        if not hmac.compare_digest(given, expected):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="edge-agent dashboard"'},
                text="edge-agent dashboard: password needed\n",
            )
        return await handler(request)

    return check


class DashboardServer:
    def __init__(self, settings: WebSettings, cache: StateCache) -> None:
        self.settings = settings
        self.cache = cache
        self._stopping = asyncio.Event()

    def app(self) -> web.Application:
        middlewares = [basic_auth(self.settings.password)] if self.settings.password else []
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/events", self._events)
        return app

    def stop(self) -> None:
        self._stopping.set()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / "index.html", headers=_REVALIDATE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        # Only plain names of files shipped in web/static/: nothing from elsewhere on disk.
        if name != Path(name).name or not (STATIC_DIR / name).is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC_DIR / name, headers=_REVALIDATE)

    async def _state(self, request: web.Request) -> web.StreamResponse:
        _, text = self.cache.state_json(_check_scope(request))
        return web.Response(text=text, content_type="application/json", headers=_REVALIDATE)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        scope = _check_scope(request)
        async with sse_response(request, ping_interval=PING_INTERVAL_S) as stream:
            await stream.write(f"retry: {RETRY_MS}\r\n\r\n".encode())
            gone = asyncio.ensure_future(stream.wait())  # ends when the page goes away
            sent_version = None
            try:
                while not self._stopping.is_set() and not gone.done():
                    version, text = self.cache.state_json(scope)
                    if version != sent_version:
                        await stream.send(text, event="state")
                        sent_version = version
                    # The throttle: at most one state a second, whatever arrives meanwhile;
                    # then the next change is sent within a tenth of a second.
                    await asyncio.wait({gone}, timeout=UPDATE_INTERVAL_S)
                    while not gone.done() and self.cache.version() == sent_version:
                        await asyncio.wait({gone}, timeout=0.1)
                        if self._stopping.is_set():
                            break
            except (ConnectionResetError, TimeoutError):
                log.debug("dashboard page %s went away", request.remote)
            finally:
                gone.cancel()
        return stream


async def serve(settings: WebSettings, cache: StateCache, ready: Callable[[], None]) -> None:
    """Serve until SIGINT/SIGTERM; OSError when the address cannot be bound."""
    server = DashboardServer(settings, cache)
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, server.stop)
        ready()
        await server._stopping.wait()
    finally:
        server.stop()
        await runner.cleanup()


def run_web(args: argparse.Namespace, feed_settings: FeedSettings, environ: dict[str, str]) -> int:
    """The command with --web: 0 after Ctrl-C or SIGTERM, 2 with a one-line reason."""
    try:
        settings = web_settings(args, environ)
    except WebSetupError as error:
        print(f"edge-agent dashboard: {error}", file=sys.stderr)
        return 2
    history = History(hours=settings.history_hours)
    model = FleetModel(
        feed_settings.base_topic,
        broker=feed_settings.label,
        subscription=feed_settings.subscription,
        listener=history,
    )
    feed = FleetFeed(feed_settings, model, reconnect=True)
    cache = StateCache(model, history)

    def ready() -> None:
        print(
            f"edge-agent dashboard: serving {settings.url} for {feed_settings.subscription}"
            f" on {feed_settings.label} (Ctrl-C stops)",
            flush=True,
        )

    feed.start()  # connects in the background; the page shows why while it cannot
    try:
        asyncio.run(serve(settings, cache, ready))
    except OSError as error:
        reason = "the port is in use" if error.errno == errno.EADDRINUSE else error.strerror
        print(
            f"edge-agent dashboard: cannot listen on {args.listen}: {reason or error}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        feed.close()
    return 0
