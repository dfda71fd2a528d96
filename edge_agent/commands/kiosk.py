"""Open the ad player page in full-screen Chromium: what `edge-agent-kiosk.service` runs.

The page's address comes from the configuration (`ads.web.host`, `ads.web.port`), so the
browser and the daemon cannot disagree about it. The command first waits until the daemon
serves the page, because Chromium shows "this site can't be reached" for a page that is not
up yet and never tries again by itself; then it replaces itself with Chromium (exec), so the
service manager watches the browser process itself and restarts it if it dies. Once the page
is open it survives daemon restarts on its own: it reconnects to the event stream and keeps
showing the last ad meanwhile.

Under a Wayland compositor (the kiosk service runs it in cage) Chromium is told to use
Wayland. Anything after `--` is passed to Chromium as it is, e.g.
`edge-agent kiosk -- --force-device-scale-factor=1.5`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from edge_agent import installed

# What the kiosk service adds to the shared kiosk flags: a fresh profile on every start (no
# "restore pages?" bubble after a power cut, nothing kept between runs) and no keyring prompt.
SERVICE_ARGS = ["--incognito", "--password-store=basic"]
INSTALLED_CONFIG = installed.CONFIG
EXIT_NO_PAGE = 1
EXIT_NO_BROWSER = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"config.yaml for the page's address (default: {INSTALLED_CONFIG} if it exists,"
        " else the built-in defaults)",
    )
    parser.add_argument("--url", help="open this address instead of the configured player page")
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the page to answer before giving up (default 120; 0: do not"
        " wait)",
    )
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the browser command instead of running it",
    )
    parser.add_argument(
        "chromium_args",
        nargs=argparse.REMAINDER,
        metavar="-- CHROMIUM_ARG",
        help="more Chromium flags, after --",
    )


def player_url(config_path: Path | None) -> str:
    """The kiosk page of the daemon that this configuration describes."""
    from edge_agent.config import load_config

    if config_path is None and INSTALLED_CONFIG.is_file():
        config_path = INSTALLED_CONFIG
    web = load_config(config_path).ads.web
    host = "127.0.0.1" if web.host in ("0.0.0.0", "::") else web.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{web.port}/"


def page_answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_for_page(url: str, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        if page_answers(url):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def browser_command(
    chromium: str, url: str, extra: list[str], environ: dict[str, str] | None = None
) -> list[str]:
    from edge_agent.ads.players.chromium import KIOSK_ARGS

    environ = os.environ if environ is None else environ
    wayland = ["--ozone-platform=wayland"] if environ.get("WAYLAND_DISPLAY") else []
    return [chromium, *KIOSK_ARGS, *SERVICE_ARGS, *wayland, *extra, url]


def run(args: argparse.Namespace) -> int:
    from edge_agent.ads.players.chromium import find_chromium

    url = args.url or player_url(args.config)
    extra = [arg for arg in args.chromium_args if arg != "--"]
    chromium = find_chromium()
    if chromium is None:
        print(
            "edge-agent kiosk: Chromium not found: sudo apt-get install chromium"
            " (or set EDGE_AGENT_CHROMIUM to the browser's path)",
            file=sys.stderr,
        )
        return EXIT_NO_BROWSER
    command = browser_command(chromium, url, extra)
    if args.print_only:
        print(" ".join(command))
        return 0
    if args.wait > 0 and not wait_for_page(url, args.wait):
        print(
            f"edge-agent kiosk: no player page at {url} after {args.wait:g} s: is edge-agent"
            " running with ads.player: web? (systemctl status edge-agent; journalctl -u"
            " edge-agent)",
            file=sys.stderr,
        )
        return EXIT_NO_PAGE
    print(f"edge-agent kiosk: opening {url}", file=sys.stderr, flush=True)
    os.execv(chromium, command)
    return 0  # not reached: exec replaced this process
