"""`edge-agent dashboard`: a live terminal view of one display or a whole fleet, over MQTT.

Why a terminal dashboard: a store manager (or the installer on a ladder with a laptop) wants to
see, without Grafana, whether each screen runs, what it shows, and who walked past in the last
window. Everything it shows comes from the published MQTT contract (`topics.py`, `payloads.py`,
`schemas/`), so it is also a living check that the contract carries what a person needs.

Three parts, kept apart so each can be tested on its own: `model.py` (`FleetModel`: MQTT
messages in, frozen `FleetView` snapshots out; it never trusts its input), `render.py` (a pure
function of a snapshot to what the terminal shows) and `feed.py` (`FleetFeed`, the read-only
paho subscriber). This module is the command: its options, and the `--once` and live loops.

Layout: up to `render.DETAIL_LIMIT` (6) devices get one detailed panel each (state, health,
audience now and today, what plays, the last error, and the last window as bars per gender x
age bracket). A larger fleet gets a compact table, one line per device under one line per site,
so 100 displays stay readable; its number columns never shrink and the creative's name is cut
first on a narrow terminal. `--device` (and `--site`) narrow the subscription to get the
detailed panels back, and `--layout panels|table` overrides the choice. The header always names
the devices that are not online, so a problem is visible even when the table is taller than the
terminal (the live view uses the alternate screen, like `top`; Ctrl-C leaves it).

Age brackets are read from the segment keys themselves (`passers_by_female_20_34` ->
female, 20-34), never hard-coded, because each device's `vision.age_brackets` decides them.
Window times are shown in the dashboard machine's local time.

`--web` serves the same fleet as a page with charts instead (`web.py`, `history.py`; the page
is `web/`): see `web.py` for its routes, its password rule and its throttle.

`--once SECONDS` connects, collects for that long after the subscription is acknowledged
(retained states arrive at once; window reports are not retained and arrive only when a window
closes), prints one plain snapshot to stdout and exits 0; it exits 2 with a one-line reason on
stderr when the broker cannot be reached, refuses the connection, or does not answer.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.live import Live

from edge_agent.commands.dashboard import render
from edge_agent.commands.dashboard.feed import FeedSettings, FleetFeed
from edge_agent.commands.dashboard.model import DEFAULT_BROKER, FleetModel
from edge_agent.telemetry.values import DEFAULT_BASE, check_id

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
PASSWORD_ENVS = ("EDGE_AGENT_DASHBOARD_PASSWORD", "EDGE_AGENT__MQTT__PASSWORD")
EXIT_NO_BROKER = 2


def parse_broker(value: str, *, tls: bool = False) -> tuple[str, int]:
    """'host', 'host:1884', '[::1]:1883' -> (host, port); the port defaults to 1883 (8883 TLS)."""
    default = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"--broker {value!r}: expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""  # a bare IPv6 address has several colons and no port
    if not host:
        raise ValueError(f"--broker {value!r}: no host")
    if not port_text:
        return host, default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--broker {value!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _topic_id(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return check_id(value, what)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return check


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: seconds must be 0 or more")
    return seconds


def _history_hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of hours") from None
    if not math.isfinite(hours) or not 0 < hours <= 48:
        raise argparse.ArgumentTypeError(f"{value!r}: hours must be more than 0 and at most 48")
    return hours


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `edge-agent dashboard` options."""
    parser.add_argument(
        "--broker",
        default=DEFAULT_BROKER,
        metavar="HOST[:PORT]",
        help=f"MQTT broker (default {DEFAULT_BROKER}; port 8883 when --tls has no port)",
    )
    parser.add_argument(
        "--site", type=_topic_id("site"), default=None, help="only this site (default: all)"
    )
    parser.add_argument(
        "--device",
        type=_topic_id("device"),
        default=None,
        help="only this device (default: all); a few devices get detailed panels",
    )
    parser.add_argument(
        "--base-topic", default=DEFAULT_BASE, help=f"topic prefix (default {DEFAULT_BASE})"
    )
    parser.add_argument("--username", default=None)
    parser.add_argument(
        "--password",
        default=None,
        help=f"with --username; default: ${PASSWORD_ENVS[0]} or ${PASSWORD_ENVS[1]} (which"
        " keeps it out of `ps`)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect with TLS")
    tls.add_argument("--ca-file", type=Path, default=None, help="CA to trust (default: system)")
    tls.add_argument("--cert-file", type=Path, default=None, help="client certificate")
    tls.add_argument("--key-file", type=Path, default=None, help="client certificate's key")
    parser.add_argument(
        "--once",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="collect for SECONDS, print one plain snapshot and exit (2: no broker)",
    )
    parser.add_argument(
        "--refresh",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="screen refresh interval (default 1)",
    )
    web = parser.add_argument_group("web page (--web)")
    web.add_argument(
        "--web",
        action="store_true",
        help="serve the dashboard as a web page with charts instead of the terminal view",
    )
    web.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where the page is served (default 127.0.0.1:8080); any address other than"
        " loopback needs a password",
    )
    web.add_argument(
        "--password-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="the page's password (HTTP Basic, any user name); default:"
        " $EDGE_AGENT_DASHBOARD_WEB_PASSWORD",
    )
    web.add_argument(
        "--history-hours",
        type=_history_hours,
        default=6.0,
        metavar="HOURS",
        help="how many hours of windows, plays and errors the page shows (default 6)",
    )
    parser.add_argument(
        "--layout",
        choices=["auto", "panels", "table"],
        default="auto",
        help=f"panels per device, a one-line-per-device table, or auto (panels up to"
        f" {render.DETAIL_LIMIT} devices)",
    )


def feed_settings(args: argparse.Namespace) -> FeedSettings:
    """FeedSettings from parsed options and the environment; ValueError says what is wrong."""
    host, port = parse_broker(args.broker, tls=args.tls)
    base = args.base_topic
    if not base or any(char in base for char in "+#") or base.endswith("/"):
        raise ValueError(f"--base-topic {base!r} must not be empty, end in '/' or use + #")
    if args.password is not None and args.username is None:
        raise ValueError("--password needs --username (MQTT sends no password alone)")
    password = args.password
    if password is None and args.username is not None:
        # Only with a user name: the daemon's environment may hold its password on a machine
        # where the dashboard connects anonymously, and that must not stop it.
        password = next((os.environ[name] for name in PASSWORD_ENVS if os.environ.get(name)), None)
    tls_files = {
        "--ca-file": args.ca_file,
        "--cert-file": args.cert_file,
        "--key-file": args.key_file,
    }
    if not args.tls and any(tls_files.values()):
        raise ValueError("--ca-file, --cert-file and --key-file need --tls")
    for option, path in tls_files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{option} {path}: no such file")
    if (args.cert_file is None) != (args.key_file is None):
        raise ValueError("--cert-file and --key-file go together")
    return FeedSettings(
        host=host,
        port=port,
        base_topic=base,
        site=args.site or "+",
        device=args.device or "+",
        username=args.username,
        password=password,
        tls=args.tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )


def run(args: argparse.Namespace) -> int:
    """`edge-agent dashboard`: 0 when done (Ctrl-C, or after --once), 2 without a broker."""
    try:
        settings = feed_settings(args)
    except ValueError as error:
        print(f"edge-agent dashboard: {error}", file=sys.stderr)
        return EXIT_NO_BROKER
    if args.web:
        if args.once is not None:
            print("edge-agent dashboard: --once is for the terminal, not --web", file=sys.stderr)
            return EXIT_NO_BROKER
        from edge_agent.commands.dashboard.web import run_web  # aiohttp only when asked for

        return run_web(args, settings, dict(os.environ))
    model = FleetModel(
        settings.base_topic, broker=settings.label, subscription=settings.subscription
    )
    feed = FleetFeed(settings, model, reconnect=args.once is None)
    if args.once is not None:
        return _run_once(feed, model, args.once, args.layout)
    return _run_live(feed, model, args.refresh, args.layout)


def _run_once(feed: FleetFeed, model: FleetModel, seconds: float, layout: str) -> int:
    try:
        failure = feed.connect()
        if failure is not None:
            print(f"edge-agent dashboard: {failure}", file=sys.stderr)
            return EXIT_NO_BROKER
        time.sleep(seconds)  # messages arrive on paho's thread meanwhile
        view = model.snapshot()
    finally:
        feed.close()
    # A plain print: no Live, no cursor movement; colours only when stdout is a terminal.
    Console(highlight=False).print(render.render(view, layout))
    return 0


def _run_live(feed: FleetFeed, model: FleetModel, refresh_s: float, layout: str) -> int:
    feed.start()
    console = Console(highlight=False)
    refresh_s = max(refresh_s, 0.1)
    try:
        with Live(
            render.render(model.snapshot(), layout),
            console=console,
            auto_refresh=False,
            screen=True,
            redirect_stderr=False,
        ) as live:
            while True:
                time.sleep(refresh_s)
                live.update(render.render(model.snapshot(), layout), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        feed.close()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-agent dashboard", description="live view of edge-agent displays over MQTT"
    )
    add_arguments(parser)
    return run(parser.parse_args(None if argv is None else list(argv)))


if __name__ == "__main__":
    sys.exit(main())
