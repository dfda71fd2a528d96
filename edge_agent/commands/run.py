"""`edge-agent run`: the daemon, as the service runs it."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config.yaml (default: built-in defaults)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames (testing)")


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.preflight import preflight, refuse_to_start
    from edge_agent.config import load_config
    from edge_agent.daemon import Daemon

    config = load_config(args.config)
    setup_logging(config)
    # Before any stage starts: a state folder, a source file or a certificate that cannot work
    # stops here with its key and reason, not with a traceback from a thread later on.
    findings = preflight(config, args.config)
    refuse_to_start(findings)
    for finding in findings:  # what the daemon copes with (the last good rules): said once
        logging.getLogger("edge_agent").warning("%s", finding)
    daemon = Daemon(config)
    daemon.install_signal_handlers()
    return daemon.run(max_frames=args.max_frames)


def setup_logging(config: Config) -> None:
    level = getattr(logging, config.logging.level)
    logging.getLogger().setLevel(level)
    if config.logging.format == "json":
        formatter = JsonFormatter()
        for handler in logging.getLogger().handlers:
            handler.setFormatter(formatter)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": round(record.created, 3),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )
