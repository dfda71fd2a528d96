"""`edge-agent demo`: the demo footage through the whole pipeline on built-in defaults, with
live stats, the ads and a built-in MQTT broker (from a checkout: it plays `samples/`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

# The checkout this package runs from: the demo footage and the example rules live there.
REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", type=Path, help="another video (default: samples/demo.mp4)")
    parser.add_argument("--loop", action="store_true", help="play it again and again")
    parser.add_argument("--window", type=float, default=15.0, help="report window in seconds")
    parser.add_argument("--json", type=Path, help="write the window reports to this file")
    parser.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        help="publish to this MQTT broker (default: a built-in one on 127.0.0.1)",
    )
    parser.add_argument("--no-mqtt", action="store_true", help="publish nothing")


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.demo_view import LiveStats, MessageCounter
    from edge_agent.config import load_config
    from edge_agent.daemon import Daemon
    from edge_agent.telemetry.embedded_broker import EmbeddedBroker

    logging.getLogger().setLevel(logging.WARNING)
    broker = None
    if args.broker is None and not args.no_mqtt:
        broker = EmbeddedBroker()
        broker.start()
    address = args.broker or (broker.address if broker else "")
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "1883")
    # The demo keeps its outbox and rules copy in a folder of its own that goes away after.
    state = tempfile.TemporaryDirectory(prefix="edge-agent-demo-")
    environ = {
        "EDGE_AGENT__ADS__RULES": str(REPO / "ads" / "rules.yaml"),
        "EDGE_AGENT__SOURCE__SPEC": str(args.video or REPO / "samples" / "demo.mp4"),
        "EDGE_AGENT__SOURCE__LOOP": "true" if args.loop else "false",
        # Real time: the reader hands over only the newest frame, as from a camera.
        "EDGE_AGENT__SOURCE__REALTIME": "true",
        "EDGE_AGENT__AUDIENCE__WINDOW_S": str(args.window),
        "EDGE_AGENT__AUDIENCE__MIN_SEGMENT_SIZE": "1",
        "EDGE_AGENT__STATE__DIR": state.name,
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "5",
        "EDGE_AGENT__MQTT__ENABLED": "false" if args.no_mqtt else "true",
        "EDGE_AGENT__MQTT__SITE": "demo",
        "EDGE_AGENT__MQTT__DEVICE": "demo",
    }
    if not args.no_mqtt:
        environ |= {"EDGE_AGENT__MQTT__HOST": host, "EDGE_AGENT__MQTT__PORT": port}
    config = load_config(None, environ=environ)
    live = LiveStats(sys.stdout)
    reports = []

    def on_report(report) -> None:
        reports.append(report)
        live.report(report)

    counter = None
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
        if counter is not None:
            print(counter.summary())
            counter.close()
        if broker is not None:
            broker.stop()
        state.cleanup()
    total = {
        "passers_by": sum(r.passers_by for r in reports),
        "viewers": sum(r.viewers for r in reports),
    }
    print(json.dumps({"demo": str(config.source.spec), **total}))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    return code
