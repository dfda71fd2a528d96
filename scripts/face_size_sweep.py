#!/usr/bin/env python3
"""Face size sweep: how many pixels a face needs to be found, and to get an age/gender estimate.

For each face width in a range (default 12..96 px), every source face is scaled to that width,
pasted into a camera-sized frame (default 1280x720, grey, at several seeded positions, plain and
mirrored), and the frame goes through the real pipeline (`VisionPipeline`: the detector under test,
alignment, quality gates, int8 age and gender models) with the settings the daemon uses by
default. Per width it reports:

- detected: the face was found (a detection whose centre lies within half a face width of
  where the face was put);
- estimated: found AND reported with a gender and an age (not "unknown");
- why the others are unknown (too_small, blurred, turned_away, gender_uncertain, age_uncertain);
- the pipeline's own width measure of the found faces (`quality.width_px`, what
  `vision.quality.min_face_px` is compared with);
- agreement of the estimates with the same face at its full size (same gender; mean |age
  difference|), and with labels when the faces come from a labelled set.

With labels, every row also has the numbers the size gate is chosen by, over the faces whose
label age is 18-75 (the range the project's gender bar is set on, shared/data/README.md):
the share of the found faces given a gender (not unknown), the gender accuracy of those given,
and the age MAE and age-bracket accuracy (`DEFAULT_BRACKETS`) of those given an age. A last
row, "full", puts every face into the same frames at its own full size: the baseline. Each
found face is also kept as a record (nominal width, `quality.width_px`, p_female, estimates,
labels), and from those the sweep works out what the run could not try directly:

- size gates: for each candidate `min_face_px` on `quality.width_px`, the same numbers per
  nominal width over the faces it lets through (meaningful above the run's own
  --min-face-px, so run with --min-face-px 0 to see them all), and per 2 px bin of
  `quality.width_px`, the accuracy right at a gate's edge;
- gender margins: what a wider `gender_margin` would give (p_female within 0.5 +- margin is
  unknown) per nominal width.

"Face width" here is the width of a 16 cm wide face, the number the camera table in
docs/deployment.md computes (face_px = width_px / (2 tan(HFOV/2)) * 0.16 m / distance). A photo
has no metres in it, so the ruler is the distance between the eye centres, taken as 63 mm (the
adult mean): a face is scaled so that its eye distance is 63/160 of the target width. The eyes
are measured at full size, in a crop the face fills, with BlazeFace (full_range_int8), whose eye
points follow a tilted head best, whatever --detector is under test (its estimate there is also
the "full size" one compared with). Faces turned by more than --max-source-yaw degrees at full
size are left out, because their eye distance is foreshortened and the ruler would be wrong.

A face is only ever shrunk, never enlarged: widths above a face's full-size width skip that face
(each row says how many trials it has).

What this does not model: camera noise, the ISP's sharpening and denoising, JPEG or H.264
artefacts, motion blur, uneven light, backlight. The pasted faces are sharp, well lit and
frontal, so the numbers are a best case; a real camera in a shop needs some margin above them.

Faces (no files are written other than --out):
- default: the public-domain portraits the tests use: scikit-image's astronaut() (Eileen
  Collins, NASA), matplotlib's grace_hopper.jpg (US Navy) and samples/astronaut.jpg (the same
  astronaut photo as a JPEG file);
- --labels CSV|DIR: a labelled set (`file,age,gender` CSV, or a folder of UTKFace-style names),
  e.g. a local evaluation folder; --limit N takes N of them (seeded). Tight crops are padded with
  grey before the full-size detection.

Usage: scripts/face_size_sweep.py [--widths 12:96:4] [--frame 1280x720] [--positions 8]
                                  [--detector yunet_s] [--min-detection-score 0.5]
                                  [--min-face-px 24] [--gates 0:40:2]
                                  [--labels CSV|DIR [--limit 300] [--ages 18:75]]
                                  [--out sweep.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import get_args

import cv2
import numpy as np
from tqdm import tqdm

from edge_agent.commands.evaluation.faces import load_rgb, pad_canvas, read_labels
from edge_agent.installed import default_models_dir
from edge_agent.segments import Brackets, Gender, gender_of
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.detectors.blazeface import ANCHOR_OPTIONS
from edge_agent.vision.pose import estimate_pose
from edge_agent.vision.values import (
    FACE_WIDTH_M,
    AnalyzerSettings,
    BlazeFaceSettings,
    DetectorName,
    Face,
    VisionSettings,
    detector_settings,
)

REPO = Path(__file__).resolve().parent.parent
EYE_DISTANCE_M = 0.063  # mean adult distance between the pupils
CANVAS_GREY = 114
REFERENCE_DETECTOR = "full_range_int8"
DEFAULT_DETECTOR = VisionSettings(models_dir=Path()).detector.name
REASONS = ("too_small", "blurred", "turned_away", "gender_uncertain", "age_uncertain")
# Label ages the gender accuracy is judged on: the project's bar (shared/data/README.md) is
# gender accuracy 18-75, where the upstream models are trustworthy at all.
ADULT_AGES = (18.0, 75.0)
# gender_margin values tried on the recorded p_female (the daemon's is 0.15).
MARGINS = (0.15, 0.2, 0.25, 0.3)
# A nominal width with fewer given estimates than this is not held to the gate's accuracy
# target: a handful of faces cannot show 95 %.
MIN_GIVEN = 20
# Width in `quality.width_px` of the bins that show accuracy right at a gate's edge.
MEASURED_BIN_PX = 2
FULL_SIZE = "full"  # the row of the faces at their own full size
MIRRORED = " (mirrored)"  # the suffix of a mirrored face's name


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    image: np.ndarray  # RGB, padded with grey so a crop around the face stays inside it
    centre: tuple[float, float]  # the face centre (mid-eyes to mouth) in `image`
    face_px: float  # the width of a 16 cm face at this image's scale (eye distance ruler)
    reference: Face  # the pipeline's result on the face at full size
    label_gender: str | None = None
    label_age: float | None = None


def default_images() -> list[tuple[str, np.ndarray, str | None, float | None]]:
    import matplotlib.cbook
    from skimage import data

    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return [
        ("skimage astronaut()", data.astronaut(), None, None),
        ("matplotlib grace_hopper.jpg", load_rgb(Path(hopper)), None, None),
        ("samples/astronaut.jpg", load_rgb(REPO / "samples" / "astronaut.jpg"), None, None),
    ]


def labelled_images(
    path: Path, limit: int | None, seed: int, ages: tuple[float, float] | None
) -> list[tuple[str, Path, str, float]]:
    images = read_labels(path)
    if ages is not None:
        # Sample only the ages that are scored, so a run's time goes to faces that count.
        images = [item for item in images if ages[0] <= item.age <= ages[1]]
    if limit is not None and limit < len(images):
        images = random.Random(seed).sample(images, limit)
    return [(item.path.name, item.path, item.gender, item.age) for item in images]


def prepare(
    name: str,
    image: np.ndarray,
    pipeline: VisionPipeline,
    max_yaw: float,
    label_gender: str | None = None,
    label_age: float | None = None,
) -> Source | str:
    """The face in `image` measured at full size, or why it cannot be used."""
    padded, _ = pad_canvas(image, 0.5)
    faces = pipeline.faces(padded)
    if not faces:
        return "no face found at full size"
    # The labelled face is the largest one. Measure it again in a crop that it fills, where the
    # detector sees it at its best and places the keypoints most precisely.
    box = max(faces, key=lambda f: f.detection.box.area).detection.box
    side = 2.5 * max(box.width, box.height)
    x0, y0 = round(box.center.x - side / 2), round(box.center.y - side / 2)
    padded = cv2.copyMakeBorder(
        padded, round(side), round(side), round(side), round(side), cv2.BORDER_CONSTANT,
        value=(CANVAS_GREY,) * 3,
    )  # fmt: skip
    x0, y0 = x0 + round(side), y0 + round(side)
    crop = padded[y0 : y0 + round(side), x0 : x0 + round(side)]
    faces = pipeline.faces(crop)
    if not faces:
        return "face lost when measured in a crop around it"
    face = max(faces, key=lambda f: f.detection.box.area)
    face = replace(face, detection=face.detection.translated(x0, y0))
    marks = face.detection.landmarks
    yaw, _, _ = estimate_pose(marks)
    if abs(yaw) > max_yaw:
        return f"turned {yaw:.0f} degrees at full size (eye-distance ruler unreliable)"
    eyes = math.hypot(marks.left_eye.x - marks.right_eye.x, marks.left_eye.y - marks.right_eye.y)
    face_px = eyes * FACE_WIDTH_M / EYE_DISTANCE_M
    eye_mid = (
        (marks.left_eye.x + marks.right_eye.x) / 2,
        (marks.left_eye.y + marks.right_eye.y) / 2,
    )
    centre = ((eye_mid[0] + marks.mouth.x) / 2, (eye_mid[1] + marks.mouth.y) / 2)
    # Enough grey around it that a crop of 4 face widths never leaves the image.
    border = math.ceil(2.5 * face_px)
    padded = cv2.copyMakeBorder(
        padded, border, border, border, border, cv2.BORDER_CONSTANT, value=(CANVAS_GREY,) * 3
    )
    centre = (centre[0] + border, centre[1] + border)
    return Source(name, padded, centre, face_px, face, label_gender, label_age)


def mirrored(source: Source) -> Source:
    width = source.image.shape[1]
    return replace(
        source,
        name=source.name + MIRRORED,
        image=np.ascontiguousarray(source.image[:, ::-1]),
        centre=(width - 1 - source.centre[0], source.centre[1]),
    )


def compose(
    source: Source, target_px: float, frame_size: tuple[int, int], at: tuple[float, float]
) -> tuple[np.ndarray, tuple[float, float]]:
    """A grey frame with the source's face scaled to target_px wide, its centre at `at`;
    returns the frame and where the face centre landed."""
    frame_w, frame_h = frame_size
    frame = np.full((frame_h, frame_w, 3), CANVAS_GREY, dtype=np.uint8)
    half = 2.0 * source.face_px  # a crop of 4 face widths: the head, hair, shoulders
    cx, cy = source.centre
    x0, y0 = round(cx - half), round(cy - half)
    crop = source.image[y0 : round(cy + half), x0 : round(cx + half)]
    scale = target_px / source.face_px
    size = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    # Area averaging is what a sensor does to a face that is far away.
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    # Face centre inside the scaled crop, then the crop's top-left corner in the frame.
    fx, fy = (cx - x0) * size[0] / crop.shape[1], (cy - y0) * size[1] / crop.shape[0]
    left, top = round(at[0] - fx), round(at[1] - fy)
    # Paste, clipped to the frame.
    sx0, sy0 = max(0, -left), max(0, -top)
    dx0, dy0 = max(0, left), max(0, top)
    w = min(size[0] - sx0, frame_w - dx0)
    h = min(size[1] - sy0, frame_h - dy0)
    if w > 0 and h > 0:
        frame[dy0 : dy0 + h, dx0 : dx0 + w] = small[sy0 : sy0 + h, sx0 : sx0 + w]
    return frame, (left + fx, top + fy)


def match(faces: list[Face], centre: tuple[float, float], target_px: float) -> Face | None:
    def distance(face: Face) -> float:
        box_centre = face.detection.box.center
        return math.hypot(box_centre.x - centre[0], box_centre.y - centre[1])

    near = [face for face in faces if distance(face) <= 0.5 * target_px]
    return min(near, key=distance) if near else None


def is_estimated(face: Face) -> bool:
    return face.gender is not Gender.UNKNOWN and face.age_years is not None


def parse_widths(text: str) -> list[int]:
    if ":" in text:
        start, stop, step = (int(part) for part in text.split(":"))
        return list(range(start, stop + 1, step))
    return [int(part) for part in text.split(",")]


def parse_frame(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split("x"))
    return width, height


def percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def parse_ages(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(":"))
    return low, high


def record(width: int | str, source: Source, found: Face) -> dict[str, object]:
    """One found face, with what the gate and margin analyses need to replay it."""
    return {
        "width": width,
        "face": source.name,
        "width_px": round(found.quality.width_px, 2),
        "p_female": None if found.p_female is None else round(found.p_female, 4),
        "gender": found.gender.value,
        "age": None if found.age_years is None else round(found.age_years, 2),
        "reasons": list(found.unknown_reasons),
        "label_gender": source.label_gender,
        "label_age": source.label_age,
    }


def adult_stats(
    records: list[dict[str, object]], brackets: Brackets, margin: float | None = None
) -> dict[str, object]:
    """Over the found faces whose label age is 18-75: the share given a gender, the gender
    accuracy of those given, age MAE and bracket accuracy of those given an age. `margin`
    replays the gender decision with another gender_margin (from the recorded p_female)."""
    adults = [
        r
        for r in records
        if r["label_gender"] is not None
        and r["label_age"] is not None
        and ADULT_AGES[0] <= r["label_age"] <= ADULT_AGES[1]
    ]

    def gender(r: dict[str, object]) -> str:
        if margin is None or r["p_female"] is None:
            return r["gender"]
        return gender_of(r["p_female"], margin).value

    genders = [(gender(r), r["label_gender"]) for r in adults]
    given = [(said, label) for said, label in genders if said != Gender.UNKNOWN.value]
    aged = [r for r in adults if r["age"] is not None]
    return {
        "faces": len(adults),
        # The placements and the mirror image of one photo are not independent samples: this
        # many photos are behind the percentages.
        "photos": len({str(r["face"]).removesuffix(MIRRORED) for r in adults}),
        "given_pct": percent(len(given), len(adults)),
        "given": len(given),
        "gender_accuracy_pct": percent(sum(said == label for said, label in given), len(given)),
        "age_given_pct": percent(len(aged), len(adults)),
        "age_mae_y": (
            round(statistics.fmean(abs(r["age"] - r["label_age"]) for r in aged), 2)
            if aged
            else None
        ),
        "bracket_accuracy_pct": percent(
            sum(brackets.of(r["age"]) == brackets.of(r["label_age"]) for r in aged), len(aged)
        ),
    }


def gate_analysis(
    records: list[dict[str, object]],
    widths: list[int | str],
    gates: list[float],
    brackets: Brackets,
) -> list[dict[str, object]]:
    """For each candidate min_face_px: the adult numbers per nominal width over the faces
    whose `quality.width_px` reaches it, and the worst gender accuracy among the widths with
    at least MIN_GIVEN given estimates."""
    adults_found = adult_stats(records, brackets)["faces"]
    results = []
    for gate in gates:
        passed = [r for r in records if r["width_px"] >= gate]
        per_width = {
            str(width): adult_stats([r for r in passed if r["width"] == width], brackets)
            for width in widths
        }
        held = [
            row["gender_accuracy_pct"]
            for width, row in per_width.items()
            if width != FULL_SIZE and row["given"] >= MIN_GIVEN
        ]
        results.append(
            {
                "min_face_px": gate,
                "adult_faces_let_through_pct": percent(
                    adult_stats(passed, brackets)["faces"], adults_found
                ),
                "worst_gender_accuracy_pct": min(held) if held else None,
                "per_width": per_width,
            }
        )
    return results


def measured_bins(records: list[dict[str, object]], brackets: Brackets) -> list[dict[str, object]]:
    """The adult numbers per MEASURED_BIN_PX bin of `quality.width_px` (nominal widths only):
    how the faces right at a gate's edge do."""
    swept = [r for r in records if r["width"] != FULL_SIZE]
    if not swept:
        return []
    low = math.floor(min(r["width_px"] for r in swept) / MEASURED_BIN_PX) * MEASURED_BIN_PX
    high = max(r["width_px"] for r in swept)
    bins = []
    while low <= high:
        inside = [r for r in swept if low <= r["width_px"] < low + MEASURED_BIN_PX]
        if inside:
            bins.append({"width_px_from": low, **adult_stats(inside, brackets)})
        low += MEASURED_BIN_PX
    return bins


def sweep(args: argparse.Namespace) -> dict[str, object]:
    models_dir = args.models or default_models_dir()
    analyzer = AnalyzerSettings(min_face_px=args.min_face_px)
    detector = detector_settings(
        args.detector, min_score=args.min_detection_score, input_pixels=args.detector_pixels
    )
    settings = VisionSettings(models_dir=models_dir, detector=detector, analyzer=analyzer)
    pipeline = VisionPipeline(settings)
    brackets = analyzer.brackets
    # The ruler and the full-size estimate come from one fixed pipeline (the daemon's default
    # detector and gates), whatever detector is under test, so runs compare.
    reference = VisionPipeline(
        VisionSettings(models_dir=models_dir, detector=detector_settings(REFERENCE_DETECTOR))
    )
    if args.labels:
        labelled = labelled_images(args.labels, args.limit, args.seed, args.ages)
        images = ((name, load_rgb(path), gender, age) for name, path, gender, age in labelled)
        total = len(labelled)
    else:
        images = iter(default_images())
        total = 3
    sources: list[Source] = []
    skipped: dict[str, str] = {}
    for name, image, gender, age in tqdm(images, total=total, desc="faces at full size"):
        prepared = prepare(name, image, reference, args.max_source_yaw, gender, age)
        if isinstance(prepared, str):
            skipped[name] = prepared
        else:
            sources.append(prepared)
    if not sources:
        raise SystemExit(f"no usable face: {skipped}")
    if not args.no_mirror:
        sources += [mirrored(source) for source in sources]

    frame_w, frame_h = args.frame
    # How the detector shrinks (or enlarges) the frame: BlazeFace to its square input,
    # YuNet to its pixel budget.
    detector_scale = (
        ANCHOR_OPTIONS[detector.variant].input_size / max(frame_w, frame_h)
        if isinstance(detector, BlazeFaceSettings)
        else math.sqrt(detector.input_pixels / (frame_w * frame_h))
    )
    detector_input = f"{round(frame_w * detector_scale)}x{round(frame_h * detector_scale)}"
    rng = random.Random(args.seed)
    rows = []
    records: list[dict[str, object]] = []
    # The nominal widths, then every face at its own full size in the same frames: the
    # baseline the smaller widths lose against.
    widths: list[int | str] = [*args.widths, FULL_SIZE]
    progress = tqdm(total=len(widths) * len(sources) * args.positions, desc="frames")
    for width in widths:
        row_records: list[dict[str, object]] = []
        targets: list[float] = []
        trials = detected = estimated = false_detections = 0
        reasons: Counter[str] = Counter()
        measured_px: list[float] = []
        same_gender = gender_compared = 0
        age_differences: list[float] = []
        label_correct = label_compared = 0
        label_age_errors: list[float] = []
        for source in sources:
            target = source.face_px if width == FULL_SIZE else width
            if target > source.face_px:
                # Only ever shrink: an enlarged photo is not what a camera sees.
                progress.update(args.positions)
                continue
            targets.append(target)
            for _ in range(args.positions):
                # Anywhere a head fits: the detector's grid must not favour one spot.
                margin_x, margin_y = min(frame_w / 2, 1.5 * target), min(frame_h / 2, 1.5 * target)
                at = (
                    rng.uniform(margin_x, frame_w - margin_x),
                    rng.uniform(margin_y, frame_h - margin_y),
                )
                frame, centre = compose(source, target, args.frame, at)
                faces = pipeline.faces(frame)
                found = match(faces, centre, target)
                trials += 1
                false_detections += len(faces) - (found is not None)
                progress.update()
                if found is None:
                    continue
                detected += 1
                measured_px.append(found.quality.width_px)
                row_records.append(record(width, source, found))
                reasons.update(found.unknown_reasons)
                if not is_estimated(found):
                    continue
                estimated += 1
                reference = source.reference
                if is_estimated(reference):
                    gender_compared += 1
                    same_gender += found.gender is reference.gender
                    age_differences.append(abs(found.age_years - reference.age_years))
                if source.label_gender is not None and source.label_age is not None:
                    label_compared += 1
                    label_correct += found.gender.value == source.label_gender
                    label_age_errors.append(abs(found.age_years - source.label_age))
        records += row_records
        # The full-size row's width is the median of the faces' own widths.
        nominal = statistics.median(targets) if targets else None
        rows.append(
            {
                "face_px": width,
                "face_px_median": None if nominal is None else round(nominal, 1),
                "share_of_frame_width": None if nominal is None else round(nominal / frame_w, 4),
                "face_px_in_detector_input": (
                    None if nominal is None else round(nominal * detector_scale, 1)
                ),
                "trials": trials,
                "faces": len(targets),
                "detected_pct": percent(detected, trials),
                "estimated_pct": percent(estimated, trials),
                "unknown_reasons_pct_of_detected": {
                    reason: percent(reasons[reason], detected) for reason in REASONS
                },
                "measured_width_px_median": (
                    round(statistics.median(measured_px), 1) if measured_px else None
                ),
                "same_gender_as_full_size_pct": percent(same_gender, gender_compared),
                "age_diff_vs_full_size_mean_y": (
                    round(statistics.fmean(age_differences), 2) if age_differences else None
                ),
                "gender_accuracy_vs_labels_pct": percent(label_correct, label_compared),
                "age_mae_vs_labels_y": (
                    round(statistics.fmean(label_age_errors), 2) if label_age_errors else None
                ),
                "false_detections": false_detections,
                # Label ages 18-75: what the size gate is chosen by.
                "adults": adult_stats(row_records, brackets),
                # The same with a wider gender_margin, replayed from p_female.
                "adults_by_gender_margin": {
                    str(margin): adult_stats(row_records, brackets, margin) for margin in MARGINS
                },
            }
        )
    progress.close()
    labelled_run = any(source.label_gender is not None for source in sources)
    gates = [gate for gate in args.gates if gate >= args.min_face_px] if labelled_run else []
    return {
        "command": "scripts/face_size_sweep.py " + " ".join(sys.argv[1:]),
        "frame": f"{frame_w}x{frame_h}",
        "detector": args.detector,
        "reference_detector": REFERENCE_DETECTOR,
        "detector_input": detector_input,
        "min_detection_score": detector.min_score,
        "min_face_px": args.min_face_px,
        # Everything the run was configured with, so a JSON file says what it measured.
        "settings": {
            "analyzer": asdict(analyzer),
            "detector": asdict(detector),
            "precision": settings.precision,
            "num_threads": settings.num_threads,
            "models_dir": str(models_dir),
            "labels": None if args.labels is None else str(args.labels),
            "limit": args.limit,
            "ages": args.ages,
            "widths": args.widths,
            "max_source_yaw": args.max_source_yaw,
        },
        "face_width_m": FACE_WIDTH_M,
        "eye_distance_m": EYE_DISTANCE_M,
        "positions_per_face": args.positions,
        "mirrored": not args.no_mirror,
        "seed": args.seed,
        "faces": [
            {
                "name": source.name,
                "face_px_full_size": round(source.face_px, 1),
                "full_size_gender": source.reference.gender.value,
                "full_size_age": (
                    None
                    if source.reference.age_years is None
                    else round(source.reference.age_years, 1)
                ),
            }
            for source in sources
            if not source.name.endswith(MIRRORED)
        ],
        "faces_skipped": skipped,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "rows": rows,
        "adult_ages": ADULT_AGES,
        "gates": gate_analysis(records, widths, gates, brackets),
        "min_given_per_width": MIN_GIVEN,
        "measured_width_bins": measured_bins(records, brackets) if labelled_run else [],
        "records": records,
    }


def format_table(result: dict[str, object]) -> str:
    lines = [
        f"frame {result['frame']}, detector {result['detector']}"
        f" ({result['detector_input']} input), min_detection_score"
        f" {result['min_detection_score']}, min_face_px {result['min_face_px']},"
        f" {len(result['faces'])} face(s) x {result['positions_per_face']} positions"
        f"{' x 2 (mirrored)' if result['mirrored'] else ''}",
        "",
        "| face px | det. input px | trials | detected | estimated | too small | measured width px"
        " | same gender as full size | mean abs age diff"
        " | gender acc. (labels) | age MAE (labels) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def show(value: object, suffix: str = "") -> str:
        return "-" if value is None else f"{value}{suffix}"

    for row in result["rows"]:
        lines.append(
            f"| {row['face_px']} | {row['face_px_in_detector_input']} | {row['trials']}"
            f" | {show(row['detected_pct'], ' %')} | {show(row['estimated_pct'], ' %')}"
            f" | {show(row['unknown_reasons_pct_of_detected']['too_small'], ' %')}"
            f" | {show(row['measured_width_px_median'])}"
            f" | {show(row['same_gender_as_full_size_pct'], ' %')}"
            f" | {show(row['age_diff_vs_full_size_mean_y'], ' y')}"
            f" | {show(row['gender_accuracy_vs_labels_pct'], ' %')}"
            f" | {show(row['age_mae_vs_labels_y'], ' y')} |"
        )
    if not result["gates"]:
        return "\n".join(lines)
    low, high = result["adult_ages"]
    lines += [
        "",
        f"Label ages {low:g}-{high:g}, found faces; given = a gender, not unknown; accuracy of"
        " those given; age MAE and brackets of those given an age:",
        "",
        "| face px | measured width px | found (photos) | given | gender acc. | age MAE"
        " | bracket acc. |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        adults = row["adults"]
        lines.append(
            f"| {row['face_px']} | {show(row['measured_width_px_median'])}"
            f" | {adults['faces']} ({adults['photos']}) | {show(adults['given_pct'], ' %')}"
            f" | {show(adults['gender_accuracy_pct'], ' %')} | {show(adults['age_mae_y'], ' y')}"
            f" | {show(adults['bracket_accuracy_pct'], ' %')} |"
        )
    widths = [str(row["face_px"]) for row in result["rows"]]
    lines += [
        "",
        f"Gender margin replayed from p_female, given / gender acc. (label ages {low:g}-{high:g}):",
        "",
        "| face px | " + " | ".join(f"margin {m}" for m in MARGINS) + " |",
        "| ---: |" + " ---: |" * len(MARGINS),
    ]
    for row in result["rows"]:
        cells = [
            f"{show(a['given_pct'], ' %')} / {show(a['gender_accuracy_pct'], ' %')}"
            for a in row["adults_by_gender_margin"].values()
        ]
        lines.append(f"| {row['face_px']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Size gates on quality.width_px: per nominal width, given faces (of those let through)"
        f" / gender acc.; worst over widths with >= {result['min_given_per_width']} given:",
        "",
        "| min_face_px | adults let through | worst | " + " | ".join(widths) + " |",
        "| ---: | ---: | ---: |" + " ---: |" * len(widths),
    ]
    for gate in result["gates"]:
        cells = [
            f"{a['given']} / {show(a['gender_accuracy_pct'], ' %')}"
            for a in gate["per_width"].values()
        ]
        lines.append(
            f"| {gate['min_face_px']:g} | {show(gate['adult_faces_let_through_pct'], ' %')}"
            f" | {show(gate['worst_gender_accuracy_pct'], ' %')} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"By measured width (quality.width_px, {MEASURED_BIN_PX} px bins, nominal widths only):",
        "",
        "| width_px | found (photos) | given | gender acc. | age MAE | bracket acc. |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in result["measured_width_bins"]:
        lines.append(
            f"| {item['width_px_from']}-{item['width_px_from'] + MEASURED_BIN_PX}"
            f" | {item['faces']} ({item['photos']}) | {show(item['given_pct'], ' %')}"
            f" | {show(item['gender_accuracy_pct'], ' %')} | {show(item['age_mae_y'], ' y')}"
            f" | {show(item['bracket_accuracy_pct'], ' %')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--widths", type=parse_widths, default=parse_widths("12:96:4"),
        help="face widths in px: START:STOP:STEP or a comma list (default 12:96:4)",
    )  # fmt: skip
    parser.add_argument(
        "--frame", type=parse_frame, default=(1280, 720), help="frame size (default 1280x720)"
    )
    parser.add_argument(
        "--positions", type=int, default=8, help="placements per face and width (default 8)"
    )
    parser.add_argument("--no-mirror", action="store_true", help="do not add mirrored faces")
    parser.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=get_args(DetectorName),
        help=f"detector name (default {DEFAULT_DETECTOR}, the daemon's)",
    )  # fmt: skip
    parser.add_argument(
        "--detector-pixels", type=int, default=None,
        help="YuNet: the frame is scaled to about this many pixels (default 230400)",
    )  # fmt: skip
    parser.add_argument(
        "--min-detection-score", type=float, default=None,
        help="vision.min_detection_score (default: the detector's own)",
    )  # fmt: skip
    parser.add_argument(
        "--min-face-px", type=float, default=AnalyzerSettings().min_face_px,
        help="vision.quality.min_face_px for this run (default: the daemon's, 24; 0: no size"
        " gate, to see the whole curve)",
    )  # fmt: skip
    parser.add_argument(
        "--gates", type=parse_widths, default=parse_widths("0:40:2"),
        help="with --labels: candidate min_face_px values to replay on quality.width_px"
        " (START:STOP:STEP or a comma list; default 0:40:2; those below --min-face-px are left"
        " out)",
    )  # fmt: skip
    parser.add_argument(
        "--max-source-yaw", type=float, default=20.0,
        help="leave out faces turned further than this at full size (default 20 degrees)",
    )  # fmt: skip
    parser.add_argument(
        "--labels", type=Path,
        help="a labelled set instead of the default portraits: CSV (file,age,gender) or a folder"
        " of UTKFace-style names",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, help="with --labels: use this many (seeded sample)")
    parser.add_argument(
        "--ages", type=parse_ages,
        help="with --labels: sample only faces with label ages LOW:HIGH (e.g. 18:75, the ages"
        " scored)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--models", type=Path, help="models folder (default: the bundled one)")
    parser.add_argument("--out", type=Path, help="write the numbers to this JSON file")
    args = parser.parse_args()
    started = time.monotonic()
    result = sweep(args)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(format_table(result))
    if result["faces_skipped"]:
        print(f"\n{len(result['faces_skipped'])} face(s) left out: see faces_skipped in --out")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
