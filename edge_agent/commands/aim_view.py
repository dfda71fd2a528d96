"""The page of `edge-agent aim`: a small local web server that pushes each update to a browser.

    GET /         the page (below): the picture with a box per face, a table of the faces
    GET /events   server-sent events: `update` (the newest picture and its faces, also sent on
                  connect), then `end` when the command stops

The picture travels inside the event as a JPEG made in memory (a data: URL), so the boxes and
the table always belong to the picture under them, and nothing is ever written to disk on
either side. The server runs on its own daemon thread with its own asyncio loop, as the ad
player's does (ads/players/web.py), and binds only to the host it is given, loopback by default:
the page shows the camera's picture of real people. Requests that name another host are refused,
so a web page elsewhere cannot read the picture through a DNS name pointed at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import cv2
import numpy as np
from aiohttp import web
from aiohttp_sse import sse_response

if TYPE_CHECKING:
    from edge_agent.commands.aim import Update

log = logging.getLogger(__name__)

# About 10 updates a second: enough to judge the picture while turning the camera.
EVERY_S: Final = 0.1
MAX_WIDTH: Final = 640  # the picture on the page; the faces are measured at full size
JPEG_QUALITY: Final = 80
PING_INTERVAL_S: Final = 15.0
RETRY_MS: Final = 1000
START_TIMEOUT_S: Final = 10.0
# Open pages get this long to receive the `end` event before the server stops.
END_GRACE_S: Final = 0.5
# Nothing the page gets may be kept: not the page, not the picture.
_NO_STORE: Final = {"Cache-Control": "no-store"}


class AimPageError(RuntimeError):
    """The page cannot be served (the port is in use, the address does not exist)."""


def jpeg_data_url(rgb: np.ndarray) -> str:
    """The picture, at most MAX_WIDTH wide, as a data: URL; encoded in memory only."""
    height, width = rgb.shape[:2]
    if width > MAX_WIDTH:
        size = (MAX_WIDTH, max(1, round(height * MAX_WIDTH / width)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the picture as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


class AimPage:
    """Serves the page and pushes each `show()` to every open copy of it."""

    every_s = EVERY_S

    def __init__(self, host: str = "127.0.0.1", port: int = 8766) -> None:
        self.host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        # Set on the loop thread before _ready; read-only afterwards.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        # Guarded by _lock: show() and close() write on the command's thread, handlers read.
        self._lock = threading.Lock()
        self._seq = 0
        self._update: str | None = None  # the newest `update` event, JSON
        self._end: str | None = None  # the `end` event, JSON, once closing
        # Loop-thread only: one wake-up per open event stream.
        self._streams: set[asyncio.Event] = set()
        wildcard = host in ("", "0.0.0.0", "::")
        # With a wildcard address the operator chose the network; any name may reach it then.
        self._hosts = None if wildcard else {"localhost", "127.0.0.1", "::1", host.strip("[]")}

    @property
    def port(self) -> int:
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._hosts is None else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Start serving; returns once the server listens. AimPageError if it cannot."""
        self._thread = threading.Thread(target=self._run, name="aim-page", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise AimPageError(f"the page did not start within {START_TIMEOUT_S:.0f} s")
        error = self._start_error
        if error is None:
            return
        self._thread.join(1.0)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            raise AimPageError(
                f"port {self._requested_port} on {self.host} is in use: pick another with --port"
            ) from error
        raise AimPageError(
            f"cannot listen on {self.host} port {self._requested_port}: {error}"
        ) from error

    def show(self, update: Update) -> None:
        """Make `update` the newest and push it to every open page. Does not wait for them."""
        event = update.to_json() | {"image": jpeg_data_url(update.frame.image)}
        with self._lock:
            self._seq += 1
            self._update = json.dumps(event)
        self._call_soon(self._wake_streams)

    def close(self, reason: str) -> None:
        """Tell the open pages why it ends (they blank the picture), then stop serving."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._update = None
            self._end = json.dumps({"reason": reason})
        loop, thread = self._loop, self._thread
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                asyncio.run_coroutine_threadsafe(self._finish(), loop)
        if thread is not None:
            thread.join(END_GRACE_S + 2.0)
            if thread.is_alive():
                log.warning("aim page thread still running after close(); it is a daemon thread")

    def _call_soon(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(callback)

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
                log.exception("aim page stopped unexpectedly")
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        app = web.Application(middlewares=[self._only_our_host])
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=END_GRACE_S)
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
            self._wake_streams()
            await runner.cleanup()

    async def _finish(self) -> None:
        self._wake_streams()
        deadline = asyncio.get_running_loop().time() + END_GRACE_S
        while self._streams and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert self._stopping is not None
        self._stopping.set()

    def _wake_streams(self) -> None:
        for wake in self._streams:
            wake.set()

    def _events_now(self) -> tuple[int, str | None, str | None]:
        with self._lock:
            return self._seq, self._update, self._end

    # --- handlers ----------------------------------------------------------------------------

    @web.middleware
    async def _only_our_host(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if self._hosts is not None:
            try:
                name = request.url.host
            except ValueError:
                name = None
            if name not in self._hosts:
                raise web.HTTPForbidden(text="edge-agent aim answers only to its own address")
        return await handler(request)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=PAGE, content_type="text/html", headers=_NO_STORE)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        wake = asyncio.Event()
        async with sse_response(
            request, ping_interval=PING_INTERVAL_S, headers=_NO_STORE
        ) as stream:
            await stream.write(f"retry: {RETRY_MS}\r\n\r\n".encode())
            self._streams.add(wake)
            gone = asyncio.ensure_future(stream.wait())  # ends when the page goes away
            sent = 0
            try:
                while not gone.done():
                    wake.clear()
                    seq, update, end = self._events_now()
                    if end is not None:
                        await stream.send(end, event="end")
                        break
                    # Only the newest matters: updates superseded while sending are skipped.
                    if update is not None and seq != sent:
                        await stream.send(update, event="update")
                        sent = seq
                    woken = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({woken, gone}, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
            except (ConnectionResetError, TimeoutError):
                log.debug("aim page %s went away", request.remote)
            finally:
                self._streams.discard(wake)
                gone.cancel()
        return stream


PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>edge-agent aim</title>
<style>
  :root { color-scheme: dark; font-family: system-ui, sans-serif; }
  body { margin: 0; padding: 12px 16px; background: #111; color: #eee; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p { margin: 4px 0 8px; max-width: 760px; }
  .note { color: #aaa; font-size: 14px; }
  #status { font-weight: 600; }
  body[data-state=stale] #status, body[data-state=disconnected] #status { color: #ffb300; }
  #view { position: relative; display: inline-block; max-width: 100%; min-width: 320px;
          min-height: 180px; margin-top: 18px; background: #222; line-height: 0; }
  #frame { display: block; max-width: 100%; }
  #frame:not([src]) { display: none; }
  .box { position: absolute; box-sizing: border-box; border: 2px solid #43a047; }
  .box.small { border-color: #ffb300; border-style: dashed; }
  .box span { position: absolute; left: -2px; bottom: 100%; padding: 1px 4px; background: #43a047;
              color: #000; font: 12px/1.4 ui-monospace, monospace; white-space: nowrap; }
  .box.small span { background: #ffb300; }
  table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 10px; border-bottom: 1px solid #333; text-align: right; }
  th { color: #aaa; font-weight: 500; }
  td.yes { color: #66bb6a; }
  td.no { color: #ffb300; }
  td.why { text-align: left; color: #aaa; }
</style>
</head>
<body data-state="connecting">
<h1>Camera aiming</h1>
<p class="note">For installing the camera only. The live picture is shown here and nowhere
else, and nothing is stored. <span id="remaining"></span></p>
<p id="status">Connecting&hellip;</p>
<div id="view"><img id="frame" alt="what the camera sees"></div>
<table id="faces">
  <thead><tr><th>face</th><th>width px</th><th>counted</th><th>classified</th>
  <th>distance</th><th class="why">also</th></tr></thead>
  <tbody></tbody>
</table>
<p class="note" id="limits"></p>
<p class="note">Width: the face's width as the pipeline measures it from its keypoints, in
frame pixels (what vision.quality.min_face_px is compared with). Distance: how far a face of
that width is from the camera, for an average adult face looking at it.
Green: large enough for an age and gender estimate; amber: counted, too small to classify.</p>
<p class="note" id="source"></p>
<script>
"use strict";
const body = document.body;
const img = document.getElementById("frame");
const view = document.getElementById("view");
const rows = document.querySelector("#faces tbody");
const statusLine = document.getElementById("status");
let ended = false;

function cell(tag, text, cls) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

function clear() {
  view.querySelectorAll(".box").forEach((box) => box.remove());
  rows.replaceChildren();
}

function blank() {
  img.removeAttribute("src");
  clear();
}

function say(state, text) {
  body.dataset.state = state;
  statusLine.textContent = text;
}

function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

function render(u) {
  img.src = u.image;
  clear();
  const W = u.frame.width, H = u.frame.height;
  for (const f of u.faces) {
    const x0 = clamp(f.box[0], 0, W), y0 = clamp(f.box[1], 0, H);
    const x1 = clamp(f.box[2], 0, W), y1 = clamp(f.box[3], 0, H);
    const small = f.classified ? "" : " small";
    const box = document.createElement("div");
    box.className = "box" + small;
    box.dataset.face = f.number;
    box.style.left = (100 * x0 / W) + "%";
    box.style.top = (100 * y0 / H) + "%";
    box.style.width = (100 * (x1 - x0) / W) + "%";
    box.style.height = (100 * (y1 - y0) / H) + "%";
    box.append(cell("span", `${f.number}: ${Math.round(f.width_px)} px, ` +
                            `${f.distance_m.toFixed(1)} m`));
    view.append(box);
    const tr = document.createElement("tr");
    tr.className = "face" + small;
    tr.dataset.face = f.number;
    tr.dataset.widthPx = f.width_px;
    tr.dataset.classified = f.classified ? "yes" : "no";
    tr.dataset.distanceM = f.distance_m;
    tr.append(
      cell("td", String(f.number)),
      cell("td", String(Math.round(f.width_px)), "width"),
      cell("td", f.counted ? "yes" : "no", f.counted ? "yes" : "no"),
      cell("td", f.classified ? "yes" : "no (too small)", f.classified ? "yes" : "no"),
      cell("td", f.distance_m.toFixed(1) + " m", "distance"),
      cell("td", f.reasons.join(", ").replaceAll("_", " "), "why"));
    rows.append(tr);
  }
  const faces = u.faces.length === 1 ? "1 face" : `${u.faces.length} faces`;
  if (u.stale_s > 0) {
    say("stale", `No new picture for ${Math.round(u.stale_s)} s` +
                 (u.source_problem ? `: ${u.source_problem}` : "") + "; reconnecting.");
  } else {
    say("live", `Live: ${u.frame.width}x${u.frame.height}, ${faces}.`);
  }
  document.getElementById("limits").textContent = u.limits;
  document.getElementById("source").textContent =
    `Source: ${u.source}; lens ${u.lens.hfov_deg} degrees across, ` +
    `focal length ${Math.round(u.lens.focal_px)} px.`;
  const m = Math.floor(u.remaining_s / 60), s = String(u.remaining_s % 60).padStart(2, "0");
  document.getElementById("remaining").textContent = `It stops by itself in ${m}:${s}.`;
}

const events = new EventSource("/events");
events.addEventListener("update", (e) => render(JSON.parse(e.data)));
events.addEventListener("end", (e) => {
  ended = true;
  events.close();
  blank();
  document.getElementById("remaining").textContent = "";
  say("ended", `Stopped: ${JSON.parse(e.data).reason}. Nothing was stored.`);
});
events.onerror = () => {
  if (ended) return;
  // The command is gone or restarting: no picture stays on screen meanwhile.
  blank();
  say("disconnected", "Not connected: is edge-agent aim still running?");
};
</script>
</body>
</html>
"""
