"""`edge-agent analyze IMAGE...`: the faces in still images, one JSON line per image."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from edge_agent.commands.vision_options import add_vision_arguments, vision_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument(
        "--annotate", type=Path, help="write a copy with boxes and labels (debug: a face image)"
    )
    add_vision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.commands.evaluation.faces import load_rgb
    from edge_agent.vision.analyzer import VisionPipeline
    from edge_agent.vision.annotate import annotate

    if args.annotate and len(args.images) != 1:
        raise SystemExit("--annotate takes one image at a time")
    # Before the models load, and in our words: OpenCV would only say it cannot decode it.
    for path in args.images:
        if not path.exists():
            raise ValueError(f"{path}: no such file")
        if not path.is_file():
            raise ValueError(f"{path}: not a file")
    pipeline = VisionPipeline(vision_settings(args))
    for path in args.images:
        image = load_rgb(path)
        faces = pipeline.faces(image)
        print(json.dumps({"image": str(path), "faces": [face.to_json() for face in faces]}))
        if args.annotate:
            annotate(image, faces, args.annotate)
            # Annotated output is an explicit debug action: say where a face image went.
            logging.getLogger("edge_agent").warning("wrote annotated image %s", args.annotate)
    return 0
