"""`edge-agent eval-footage VIDEO TRUTH.json`: the pipeline's counts against a ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path)
    parser.add_argument("truth", type=Path, help="ground-truth JSON (make_demo_footage.py)")
    parser.add_argument("--config", type=Path, help="config.yaml (default: built-in defaults)")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.faces import format_table
    from edge_agent.commands.evaluation.footage import evaluate_footage
    from edge_agent.config import load_config

    result = evaluate_footage(args.video, args.truth, load_config(args.config))
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
