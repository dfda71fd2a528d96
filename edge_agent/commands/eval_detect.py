"""`edge-agent eval-detect BOXES.json`: detection recall by face size on labelled photos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.commands.vision_options import add_vision_arguments, vision_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "boxes",
        type=Path,
        metavar="BOXES.json",
        help="JSON object: image file name (next to it or in its images/ folder) ->"
        " [[x1, y1, x2, y2, label], ...] in image pixels",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write the numbers to this file; unmatched_detections is an upper bound on false"
        " detections, since labelled sets are not always complete",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write recall_by_width.png into this folder (the plots extra)",
    )
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N images")
    parser.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="the detector's score threshold (default: the detector's own)",
    )
    parser.add_argument(
        "--tiles",
        metavar="CxR",
        help="also detect on C x R overlapping tiles of each image (e.g. 2x2), merged with the"
        " whole image: more small faces, C x R + 1 times the work",
    )
    add_vision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from edge_agent.commands.evaluation.detection import (
        evaluate,
        format_table,
        read_boxes,
        require_matplotlib,
        write_plots,
    )

    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        raise ValueError(f"--min-score must be between 0 and 1, got {args.min_score}")
    if args.limit < 0:
        raise ValueError(f"--limit must be 0 (all) or more, got {args.limit}")
    if args.plots:
        require_matplotlib()
    images = read_boxes(args.boxes)
    if args.limit:
        images = images[: args.limit]
    settings = vision_settings(args)
    if args.min_score is not None:
        detector = dataclasses.replace(settings.detector, min_score=args.min_score)
        settings = dataclasses.replace(settings, detector=detector)
    tiles = None
    if args.tiles:
        columns, _, rows = args.tiles.lower().partition("x")
        if not (columns.isdigit() and rows.isdigit() and int(columns) >= 1 and int(rows) >= 1):
            raise ValueError(f"--tiles {args.tiles!r}: expected COLUMNSxROWS, e.g. 2x2")
        tiles = (int(columns), int(rows))
    result, tally = evaluate(images, settings, tiles=tiles)
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plots:
        for path in write_plots(tally, args.plots, title=str(result["detector"])):
            print(f"wrote {path}")
    return 0
