"""`edge-agent config check FILE | schema`: validate a config file, or print its JSON Schema.

`check` also runs `run`'s preflight (the state folder, the rules file, a file source, TLS
files) without opening the camera or the broker, and lists every problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", help="validate a config file and the paths it names, as `run` would"
    )
    check.add_argument("file", type=Path)
    check.add_argument(
        "--values-only",
        action="store_true",
        help="check the keys and values only, not the paths on this machine (a config written"
        " for another root, as scripts/install.sh --root does)",
    )
    actions.add_parser("schema", help="print the JSON Schema of config.yaml")


def run(args: argparse.Namespace) -> int:
    from edge_agent.config import Config, load_config

    if args.action == "schema":
        print(json.dumps(Config.json_schema(), indent=2))
        return 0
    from edge_agent.commands.preflight import PreflightError, preflight

    config = load_config(args.file)
    # What `run` would refuse, or cope with, on this machine: every finding at once.
    findings = [] if args.values_only else preflight(config, args.file)
    if findings:
        raise PreflightError([finding.problem for finding in findings])
    print(f"{args.file}: OK")
    return 0
