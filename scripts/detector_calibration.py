"""How YuNet's boxes and points relate to BlazeFace's, measured on faces both detectors find.

    .venv/bin/python scripts/detector_calibration.py BOXES.json [--limit N] [--json FILE]

The rest of the pipeline (alignment, the quality gates, the tracker's size gates, every
evaluation) was built on BlazeFace's face box and keypoints. `edge_agent/vision/detectors/
yunet.py` reshapes YuNet's boxes to BlazeFace's (`_WIDTH_TO_BLAZEFACE`, `_HEIGHT_TO_BLAZEFACE`,
`_SHIFT_DOWN`), and `edge_agent/vision/pose.py` reads yaw from the eyes where there are no ear
points (`NOSE_TO_EYE_RATIO`). This script measures those numbers on real photos:

- the images of a boxes file (the `eval-detect` format, e.g. ../shared/data/faces-real-dev);
  only the image files are used, not the labelled boxes;
- BlazeFace `full_range_int8` and YuNet `yunet_s` (float32, so the numbers are the model's,
  not the quantisation's) on each image; a pair is one BlazeFace face and the YuNet face whose
  centre lies within a quarter of its width;
- per pair, YuNet's own box (the reshaping undone) against BlazeFace's: width and height ratios
  and how much higher its centre sits, in BlazeFace heights; medians printed;
- per pair with BlazeFace's ear points and a turned head (|yaw| >= 5 degrees from the ears),
  the eye-based asymmetry from YuNet's points: the least-squares k in tan(yaw) = k x asymmetry,
  and the median |difference| between the two yaws with that k.

Prints a table; `--json` writes the numbers. Nothing is written otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.commands.evaluation.detection import read_boxes  # noqa: E402
from edge_agent.commands.evaluation.faces import load_rgb  # noqa: E402
from edge_agent.installed import default_models_dir  # noqa: E402
from edge_agent.vision.detectors.blazeface import BlazeFaceDetector  # noqa: E402
from edge_agent.vision.detectors.yunet import YuNetDetector, yunet_box  # noqa: E402
from edge_agent.vision.pose import NOSE_TO_EYE_RATIO, estimate_pose  # noqa: E402
from edge_agent.vision.values import Detection, YuNetSettings  # noqa: E402

MIN_YAW_DEG = 5.0  # below this the asymmetry is mostly noise and says little about k
# Keypoints of smaller faces are a few pixels apart: their noise, not the head, sets the ratio.
MIN_WIDTH_PX = 40.0


def pairs(blazeface: list[Detection], yunet: list[Detection]) -> list[tuple[Detection, Detection]]:
    def centre(face: Detection) -> np.ndarray:
        box = face.box
        return np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])

    found = []
    for face in blazeface:
        width = face.box.x1 - face.box.x0
        near = [
            other for other in yunet if np.hypot(*(centre(face) - centre(other))) < 0.25 * width
        ]
        if len(near) == 1:
            found.append((face, near[0]))
    return found


def eye_asymmetry(face: Detection) -> float:
    """The nose's sideways offset between the eyes, as the pipeline's pose reads it: its
    eye-based yaw is atan(asymmetry x NOSE_TO_EYE_RATIO), so the ratio in use cancels out."""
    return math.tan(math.radians(estimate_pose(face.landmarks).yaw)) / NOSE_TO_EYE_RATIO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("boxes", type=Path, help="a boxes file (eval-detect's format)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument(
        "--min-width", type=float, default=MIN_WIDTH_PX,
        help=f"the yaw fit's faces: BlazeFace box at least this wide (default {MIN_WIDTH_PX:g} px)",
    )  # fmt: skip
    parser.add_argument("--models", type=Path, default=None, help="models folder")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    try:
        images = read_boxes(args.boxes)[: args.limit]
    except ValueError as error:
        print(f"detector_calibration: {error}", file=sys.stderr)
        return 2
    models = args.models or default_models_dir()
    blazeface = BlazeFaceDetector(models, "full_range_int8")
    yunet = YuNetDetector(models, YuNetSettings(precision="float32"))

    widths, heights, shifts, asymmetries, tangents, yaws = [], [], [], [], [], []
    for image in tqdm(images, desc="calibration", unit="img"):
        rgb = load_rgb(image.path)
        for ours, theirs in pairs(blazeface.detect(rgb), yunet.detect(rgb)):
            x0, y0, x1, y1 = yunet_box(theirs.box)
            box = ours.box
            height = box.y1 - box.y0
            widths.append((x1 - x0) / (box.x1 - box.x0))
            heights.append((y1 - y0) / height)
            shifts.append(((box.y0 + box.y1) / 2 - (y0 + y1) / 2) / height)
            yaw = estimate_pose(ours.landmarks).yaw
            wide = box.x1 - box.x0 >= args.min_width
            if ours.landmarks.right_ear is not None and abs(yaw) >= MIN_YAW_DEG and wide:
                asymmetries.append(eye_asymmetry(theirs))
                tangents.append(math.tan(math.radians(yaw)))
                yaws.append(yaw)
    if not widths:
        print("detector_calibration: no face was found by both detectors", file=sys.stderr)
        return 1
    a, t = np.array(asymmetries), np.array(tangents)
    ratio = float(a @ t / (a @ a)) if a.size else float("nan")
    fitted = np.degrees(np.arctan(a * ratio))
    result = {
        "images": len(images),
        "pairs": len(widths),
        "yunet_width_over_blazeface": round(statistics.median(widths), 3),
        "yunet_height_over_blazeface": round(statistics.median(heights), 3),
        "yunet_centre_higher_in_blazeface_heights": round(statistics.median(shifts), 3),
        "turned_pairs": int(a.size),
        "nose_to_eye_ratio": round(ratio, 3),
        "median_abs_yaw_difference_deg": (
            round(float(np.median(np.abs(fitted - np.array(yaws)))), 1) if a.size else None
        ),
    }
    for key, value in result.items():
        print(f"{key:<44} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
