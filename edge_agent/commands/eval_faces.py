"""`edge-agent eval LABELS`: accuracy of the vision stage on labelled face images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.commands.vision_options import add_vision_arguments, vision_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", type=Path, help="CSV with file,age,gender or a UTKFace folder")
    parser.add_argument("--mode", choices=["detect", "whole"], default="whole")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    parser.add_argument("--plots", type=Path, help="write PNG plots into this folder")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument(
        "--compare-float", action="store_true", help="also run the float32 models: int8 vs float"
    )
    add_vision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.faces import (
        evaluate,
        format_table,
        read_labels,
        write_plots,
    )

    images = read_labels(args.labels)
    if args.limit:
        images = images[: args.limit]
    settings = vision_settings(args)
    result, tally = evaluate(images, settings, args.mode, compare_float=args.compare_float)
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plots:
        for path in write_plots(tally, settings.analyzer.brackets, args.plots):
            print(f"wrote {path}")
    return 0
