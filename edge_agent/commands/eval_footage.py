"""`edge-agent eval-footage VIDEO TRUTH.json`: the pipeline's counts against a ground truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path)
    parser.add_argument(
        "truth",
        type=Path,
        help="ground-truth JSON: make_demo_footage.py's, or one written by watching the clip"
        " (one object, or one per clip keyed by file name)",
    )
    parser.add_argument("--config", type=Path, help="config.yaml (default: built-in defaults)")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    pacing = parser.add_mutually_exclusive_group()
    pacing.add_argument(
        "--every", type=int, default=1, metavar="N", help="process every Nth frame (default 1)"
    )
    pacing.add_argument(
        "--realtime",
        action="store_true",
        help="pace frames at the clip's rate; while busy, only the newest frame waits",
    )
    parser.add_argument(
        "--slowdown",
        type=float,
        default=1.0,
        help="with --realtime: count each frame's cost this many times (4: about a Pi 4)",
    )


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.faces import format_table
    from edge_agent.commands.evaluation.footage import TruthError, evaluate_footage
    from edge_agent.config import load_config
    from edge_agent.sources.base import SourceError

    if args.every < 1 or args.slowdown <= 0:
        print("eval-footage: --every must be at least 1 and --slowdown positive", file=sys.stderr)
        return 2
    try:
        result = evaluate_footage(
            args.video,
            args.truth,
            load_config(args.config),
            every=args.every,
            realtime=args.realtime,
            slowdown=args.slowdown,
        )
    except (TruthError, SourceError) as error:
        print(f"eval-footage: {error}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
