"""False face detections per 100 frames, on footage whose every face is known.

    .venv/bin/python scripts/false_detections.py [--detector NAME] [--json FILE]

Runs a detector frame by frame over footage whose visible faces are all boxed:
- `samples/demo.mp4` (generated; `demo_truth.json` boxes every visible face per frame),
- the three real clips in `samples/footage-real/` (`truth.json` boxes every visible face,
  checked by eye).

A detection is a face when its centre lies inside a known face box grown by a quarter on each
side (edge_agent/commands/evaluation/known_faces.py); everything else is a false detection.
Also counted: the known faces a detection lands on (the detector's recall on this footage).
Prints a table; `--json` writes the numbers. The acceptance bar for the default detector is at
most 1 false detection per 100 frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import get_args

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.commands.evaluation.known_faces import (  # noqa: E402
    Footage,
    detection_boxes,
    known_footage,
    landed,
    video_frames,
)
from edge_agent.installed import default_models_dir  # noqa: E402
from edge_agent.vision.detectors import make_detector  # noqa: E402
from edge_agent.vision.detectors.base import Detector  # noqa: E402
from edge_agent.vision.values import (  # noqa: E402
    DetectorName,
    VisionSettings,
    YuNetSettings,
    detector_settings,
)


def count(detector: Detector, footage: Footage) -> dict[str, int]:
    tally = {"frames": 0, "faces": 0, "found": 0, "detections": 0, "false": 0}
    for index, frame in enumerate(video_frames(footage.path)):
        known = footage.boxes_of(index)
        boxes = detection_boxes(detector.detect(frame))
        hit, false = landed(known, boxes)
        tally["frames"] += 1
        tally["faces"] += len(known)
        tally["found"] += len(hit)
        tally["detections"] += len(boxes)
        tally["false"] += false
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detector",
        choices=get_args(DetectorName),
        help="default: the daemon's default detector",
    )
    parser.add_argument("--pixels", type=int, help="YuNet input pixels (default: its own)")
    parser.add_argument("--min-score", type=float, help="default: the detector's own")
    parser.add_argument("--models", type=Path, help="models folder (default: bundled)")
    parser.add_argument("--samples", type=Path, default=REPO / "samples")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    args = parser.parse_args(argv)
    detector_config = (
        detector_settings(args.detector, min_score=args.min_score, input_pixels=args.pixels)
        if args.detector
        else YuNetSettings()
    )
    settings = VisionSettings(args.models or default_models_dir(), detector=detector_config)
    detector = make_detector(settings)
    results = {footage.name: count(detector, footage) for footage in known_footage(args.samples)}
    total = {key: sum(row[key] for row in results.values()) for key in next(iter(results.values()))}
    results["all"] = total
    print(f"detector {detector.name}: false detections (centre off every known face)")
    print(f"{'footage':<46} {'frames':>7} {'faces':>6} {'found':>6} {'false':>6} {'per 100':>8}")
    for name, row in results.items():
        per_100 = 100 * row["false"] / max(row["frames"], 1)
        print(
            f"{name:<46} {row['frames']:>7} {row['faces']:>6} {row['found']:>6}"
            f" {row['false']:>6} {per_100:>8.2f}"
        )
    if args.json:
        payload = {"detector": detector.name, "footage": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
