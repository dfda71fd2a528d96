"""`edge-agent demo`: the demo footage through the whole pipeline on built-in defaults, with
live stats, the ads and a built-in MQTT broker (from a checkout: it plays `samples/`)."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.config import Config
    from edge_agent.telemetry.embedded_broker import EmbeddedBroker

# The checkout this package runs from: the demo footage and the example rules live there.
REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", type=Path, help="another video (default: samples/demo.mp4)")
    parser.add_argument("--loop", action="store_true", help="play it again and again")
    parser.add_argument(
        "--window", type=float, help=f"report window in seconds (default: {DEFAULT_WINDOW_S:g})"
    )
    parser.add_argument("--json", type=Path, help="write the window reports to this file")
    parser.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        help="publish to this MQTT broker (default: a built-in one on 127.0.0.1)",
    )
    parser.add_argument("--no-mqtt", action="store_true", help="publish nothing")
    parser.add_argument(
        "--kiosk-port",
        type=int,
        metavar="PORT",
        help=f"serve the kiosk page on this port (default: {KIOSK_PORT}; 0: any free one)",
    )
    parser.epilog = (
        "Any setting can also be changed for the demo with its environment variable,"
        " EDGE_AGENT__SECTION__KEY=value (e.g. EDGE_AGENT__ADS__WEB__PORT=8766); the options"
        " above win over those."
    )


DEFAULT_WINDOW_S = 15.0
KIOSK_PORT = 8765


def demo_environ(
    args: argparse.Namespace,
    state_dir: str,
    broker: tuple[str, str],
    kiosk_port: int | None,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The demo's settings as overrides: its own defaults, then the user's EDGE_AGENT__*
    variables, then the options given on the command line (`broker` is (host, port),
    `kiosk_port` --kiosk-port with 0 already made a real port)."""
    from edge_agent.config import ENV_PREFIX

    settings = {
        "EDGE_AGENT__ADS__RULES": str(REPO / "ads" / "rules.yaml"),
        "EDGE_AGENT__SOURCE__SPEC": str(REPO / "samples" / "demo.mp4"),
        "EDGE_AGENT__SOURCE__LOOP": "false",
        # Real time: the reader hands over only the newest frame, as from a camera.
        "EDGE_AGENT__SOURCE__REALTIME": "true",
        "EDGE_AGENT__AUDIENCE__WINDOW_S": str(DEFAULT_WINDOW_S),
        "EDGE_AGENT__AUDIENCE__MIN_SEGMENT_SIZE": "1",
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "5",
        "EDGE_AGENT__MQTT__SITE": "demo",
        "EDGE_AGENT__MQTT__DEVICE": "demo",
    }
    settings |= {
        name: value for name, value in environ.items() if name.upper().startswith(ENV_PREFIX)
    }
    # The demo's outbox and rules copy always go to its own folder, deleted at the end.
    settings["EDGE_AGENT__STATE__DIR"] = state_dir
    given = {
        "EDGE_AGENT__SOURCE__SPEC": None if args.video is None else str(args.video),
        "EDGE_AGENT__SOURCE__LOOP": "true" if args.loop else None,
        "EDGE_AGENT__AUDIENCE__WINDOW_S": None if args.window is None else str(args.window),
        "EDGE_AGENT__ADS__WEB__PORT": None if kiosk_port is None else str(kiosk_port),
        "EDGE_AGENT__MQTT__ENABLED": "false" if args.no_mqtt else "true",
    }
    if not args.no_mqtt:
        given |= {"EDGE_AGENT__MQTT__HOST": broker[0], "EDGE_AGENT__MQTT__PORT": broker[1]}
    settings |= {name: value for name, value in given.items() if value is not None}
    return settings


def run(args: argparse.Namespace) -> int:
    from edge_agent.ads.players.base import PlayerError
    from edge_agent.commands.preflight import preflight, refuse_to_start
    from edge_agent.config import load_config
    from edge_agent.sources.factory import check_source_plays
    from edge_agent.sources.spec import parse_spec
    from edge_agent.telemetry.embedded_broker import EmbeddedBroker, free_port

    logging.getLogger().setLevel(logging.WARNING)
    # 0 becomes a free port now, so that the kiosk address printed is the real one (the web
    # player would pick one only when it starts).
    kiosk = free_port() if args.kiosk_port == 0 else args.kiosk_port
    # The demo keeps its outbox and rules copy in a folder of its own that goes away after.
    with tempfile.TemporaryDirectory(prefix="edge-agent-demo-") as state_dir:
        # The broker's address is known once it runs: the first load is for the checks.
        settings = demo_environ(args, state_dir, ("127.0.0.1", "1883"), kiosk, os.environ)
        config = load_config(None, environ=settings)
        # A file that cannot play stops the demo now, saying why: `run` would retry it as a
        # camera that may come back, and the demo would wait for ever.
        if parse_spec(config.source.spec).is_file:
            check_source_plays(config.source_settings())
        refuse_to_start(preflight(config, None, settings))
        broker = None
        if args.broker is None and not args.no_mqtt:
            broker = EmbeddedBroker()
            broker.start()
        address = args.broker or (broker.address if broker else "")
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "1883")
        settings = demo_environ(args, state_dir, (host, port), kiosk, os.environ)
        config = load_config(None, environ=settings)
        try:
            return _play(config, args, broker, host, port)
        except PlayerError as error:
            if isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.EADDRINUSE:
                web = config.ads.web
                raise PlayerError(
                    f"port {web.port} on {web.host} is in use (another demo or the service?):"
                    " give the demo another with --kiosk-port PORT (0: any free one)"
                ) from None
            raise
        finally:
            if broker is not None:
                broker.stop()


def _play(
    config: Config, args: argparse.Namespace, broker: EmbeddedBroker | None, host: str, port: str
) -> int:
    from edge_agent.commands.demo_view import LiveStats, MessageCounter
    from edge_agent.daemon import Daemon

    live = LiveStats(sys.stdout)
    reports = []

    def on_report(report) -> None:
        reports.append(report)
        live.report(report)

    counter = None
    note = _TemporaryOutboxNote()
    client_log = logging.getLogger("edge_agent.telemetry.client")
    client_log.addFilter(note)
    try:
        daemon = Daemon(config, on_report=on_report, on_frame=live.frame, on_play_start=live.play)
        if daemon.ads is not None and config.ads.player == "web":
            web = config.ads.web
            print(f"kiosk page: http://{web.host}:{web.port}/ (open it to watch)")
        if daemon.telemetry is not None:
            counter = MessageCounter(host, int(port), daemon.telemetry.topics.subscription)
            where = "built-in broker" if broker else "broker"
            print(
                f"MQTT: {where} on {host}:{port}, topics {daemon.telemetry.topics.root}/..."
                f" (watch: edge-agent dashboard --broker {host}:{port})"
            )
        daemon.install_signal_handlers()
        code = daemon.run()
    finally:
        live.close()
        client_log.removeFilter(note)
        if counter is not None:
            print(counter.summary())
            counter.close()
    total = {
        "passers_by": sum(r.passers_by for r in reports),
        "viewers": sum(r.viewers for r in reports),
    }
    print(json.dumps({"demo": str(config.source.spec), **total}))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    return code


class _TemporaryOutboxNote(logging.Filter):
    """The MQTT link says unsent messages "stay in the outbox" for the next start, which is
    true of `run`; the demo's outbox is in a temporary folder deleted at exit, so say that."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "stay in the outbox" in str(record.msg):
            unsent = record.args[0] if isinstance(record.args, tuple) and record.args else "some"
            record.msg = (
                "MQTT: %s messages were not acknowledged by the broker; they are lost, the"
                " demo's outbox is a temporary folder deleted at exit"
            )
            record.args = (unsent,)
        return True
