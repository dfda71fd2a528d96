"""`edge-agent config check FILE | schema`: validate a config file, or print its JSON Schema."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)
    actions.add_parser("schema", help="print the JSON Schema of config.yaml")


def run(args: argparse.Namespace) -> int:
    from edge_agent.config import Config, load_config

    if args.action == "schema":
        print(json.dumps(Config.json_schema(), indent=2))
        return 0
    load_config(args.file)
    print(f"{args.file}: OK")
    return 0
