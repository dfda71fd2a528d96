#!/usr/bin/env python3
"""How long from the scheduler's decision to the new creative fully on the kiosk screen?

Starts a `WebPlayer`, opens its kiosk page in headless Chromium, and makes N switches that
cycle through three full-HD images and one 720p VP8 video (generated into a temporary folder).
Each switch is measured two ways:

- server: `ShownReport.latency_s`, from `PlayStart.started_wall` (just before `show()`) to the
  page's POST /api/shown arriving: the whole path, event push and report included.
- page:   the page's own `performance.now()` from the event arriving to the cross-fade done;
  `ready` is the part of that until the media could be drawn (decoded / playing), so
  page - ready is the fade itself (300 ms by design).

Prints min / p50 / p95 / max in ms per measure, and per kind of creative, and writes every
number to a JSON file. Exits 2 when any switch did not reach the screen within 1 s.

Needs Chromium ($EDGE_AGENT_CHROMIUM or `chromium` on PATH) and the [dev] extra (playwright).
Usage: scripts/bench_kiosk.py [--switches 50] [--dwell 0.25] [--out bench-kiosk.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.ads.players.base import ShownReport
from edge_agent.ads.players.chromium import HEADLESS_ARGS, find_chromium
from edge_agent.ads.players.web import WebPlayer
from edge_agent.ads.values import Creative, MediaKind, PlayStart

DEADLINE_S = 1.0  # a switch slower than this fails the benchmark
GIVE_UP_S = 10.0  # a switch not shown by then is abandoned


def make_media(folder: Path) -> list[Creative]:
    """Three 1920x1080 PNG images with detail (gradients, text) and a 2 s 1280x720 VP8 video."""
    creatives = []
    ys, xs = np.mgrid[0:1080, 0:1920]
    for i, tint in enumerate([(255, 80, 40), (40, 200, 80), (60, 60, 255)]):
        image = np.empty((1080, 1920, 3), np.uint8)
        for c in range(3):
            image[..., c] = (tint[c] * (0.35 + 0.65 * ((xs + ys * (i + 1)) % 1920) / 1920)).astype(
                np.uint8
            )
        cv2.putText(image, f"creative {i}", (200, 560), cv2.FONT_HERSHEY_SIMPLEX, 6, (255,) * 3, 12)
        path = folder / f"image{i}.png"
        cv2.imwrite(str(path), image)
        creatives.append(Creative(f"image{i}", path, MediaKind.IMAGE, 5.0))
    path = folder / "clip.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 25.0, (1280, 720))
    if not writer.isOpened():
        raise SystemExit("this OpenCV cannot write VP8 WebM")
    for n in range(50):
        frame = np.full((720, 1280, 3), (30, 4 * n, 220 - 4 * n), np.uint8)
        cv2.circle(frame, (100 + 22 * n, 360), 80, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    creatives.append(Creative("clip", path, MediaKind.VIDEO, 2.0))
    return creatives


def stats_ms(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def print_table(rows: dict[str, dict[str, float | int]]) -> None:
    print(f"{'ms':<24}{'n':>5}{'min':>9}{'p50':>9}{'p95':>9}{'max':>9}")
    for name, s in rows.items():
        if not s["n"]:
            print(f"{name:<24}{0:>5}")
            continue
        cells = "".join(f"{s[k]:>9.1f}" for k in ("min", "p50", "p95", "max"))
        print(f"{name:<24}{s['n']:>5}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--switches", type=int, default=50)
    parser.add_argument(
        "--dwell", type=float, default=0.25, help="seconds on screen before the next switch"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-kiosk.json"))
    parser.add_argument("--chromium", help="Chromium executable (default: found on PATH)")
    args = parser.parse_args(argv)

    executable = args.chromium or find_chromium()
    if executable is None:
        print("no Chromium: install chromium or pass --chromium PATH", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    reports: dict[str, ShownReport] = {}
    arrived = threading.Condition()

    def on_shown(report: ShownReport) -> None:
        with arrived:
            reports.setdefault(report.play_id, report)
            arrived.notify_all()

    switches: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    console_errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-kiosk-") as tmp:
        creatives = make_media(Path(tmp))
        with (
            WebPlayer(port=0, on_shown=on_shown) as player,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch(executable_path=executable, args=HEADLESS_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.goto(player.url)
            # The first play of each creative fetches and decodes it (cold); the measured
            # switches after that find it in the browser's caches, as a kiosk rotating a
            # playlist does.
            for creative in creatives:
                _, report, waited = play_and_wait(player, page, creative, reports, arrived)
                cold.append(measure(len(cold), creative, report, waited))
                page.wait_for_timeout(args.dwell * 1000)
            for n in range(args.switches):
                creative = creatives[n % len(creatives)]
                _, report, waited = play_and_wait(player, page, creative, reports, arrived)
                switches.append(measure(n, creative, report, waited))
                page.wait_for_timeout(args.dwell * 1000)
            version = browser.version
            browser.close()

    def column(
        key: str, kind: str | None = None, rows: list[dict[str, Any]] = switches
    ) -> list[float]:
        return [s[key] for s in rows if s[key] is not None and kind in (None, s["kind"])]

    summary = {
        "server": stats_ms(column("server_ms")),
        "page": stats_ms(column("page_ms")),
        "page ready": stats_ms(column("page_ready_ms")),
        "server, images": stats_ms(column("server_ms", "image")),
        "server, video": stats_ms(column("server_ms", "video")),
        "page ready, images": stats_ms(column("page_ready_ms", "image")),
        "page ready, video": stats_ms(column("page_ready_ms", "video")),
        "server, first show": stats_ms(column("server_ms", rows=cold)),
        "page ready, first show": stats_ms(column("page_ready_ms", rows=cold)),
    }
    missed = [s["n"] for s in switches if not s["in_time"]]
    missed_cold = [s["creative_id"] for s in cold if not s["in_time"]]
    print(f"{len(switches)} switches, Chromium {version} (headless, software rendering)")
    print_table(summary)
    if missed or missed_cold:
        print(
            f"not on screen within {DEADLINE_S:.0f} s: switches {missed},"
            f" first shows of {missed_cold}"
        )
    if console_errors:
        print(f"page console errors: {console_errors[:5]}")
    args.out.write_text(
        json.dumps(
            {
                "switches": switches,
                "first_shows": cold,
                "summary_ms": summary,
                "missed": missed,
                "missed_first_shows": missed_cold,
                "console_errors": console_errors,
                "chromium": version,
                "machine": {
                    "platform": platform.platform(),
                    "processor": platform.machine(),
                    "cpus": os.cpu_count(),
                },
                "dwell_s": args.dwell,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 2 if missed or missed_cold else 0


def measure(
    n: int, creative: Creative, report: ShownReport | None, waited: float
) -> dict[str, Any]:
    return {
        "n": n,
        "creative_id": creative.creative_id,
        "kind": str(creative.kind),
        "in_time": report is not None and waited <= DEADLINE_S,
        "server_ms": None if report is None else report.latency_s * 1000,
        "page_ms": None if report is None else report.page_latency_ms,
        "page_ready_ms": None if report is None else report.page_ready_ms,
    }


def play_and_wait(
    player: WebPlayer,
    page: Any,
    creative: Creative,
    reports: dict[str, ShownReport],
    arrived: threading.Condition,
) -> tuple[PlayStart, ShownReport | None, float]:
    """Show one creative and wait for the page's report; returns it (None if it never came)
    and the seconds waited."""
    play = PlayStart(uuid.uuid4().hex, creative, "bench", time.time(), "benchmark switch")
    start = time.monotonic()
    player.show(play)
    while time.monotonic() - start < GIVE_UP_S:
        with arrived:
            if arrived.wait_for(lambda: play.play_id in reports, timeout=0.005):
                return play, reports[play.play_id], time.monotonic() - start
        # Lets Playwright read the browser's messages while we wait; touches nothing in the page.
        page.wait_for_timeout(1)
    return play, None, time.monotonic() - start


if __name__ == "__main__":
    sys.exit(main())
