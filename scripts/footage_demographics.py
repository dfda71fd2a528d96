#!/usr/bin/env python3
"""Per-person demographics on footage: bracket and gender accuracy of one fused estimate per
person, from faces 40-120 px wide, against the same faces at full size.

For each of N labelled faces (a seeded sample of a UTKFace-style set) a short visit is made in
memory: about 15 frames at 12.5 fps of a grey camera-sized frame (default 1280x720) with the
face pasted at a width drawn uniformly from 40-120 px, drifting a few px per frame and growing
by 10 % over the visit (someone stepping toward the camera), optionally with mild sensor-like
noise; then empty frames until the tracker lets the person go. The frames go through a fresh
`FramePipeline` (detect, track, classify, count) built from the default configuration exactly
as `edge-agent eval-footage` builds it; the person's estimate is the `estimate` of the visit
`Audience` counts when the track ends (the longest visit, if the track broke up).

The baseline is the same face at its full size through what `edge-agent eval --mode detect`
does: the crop padded onto a grey canvas, found by the configured detector, aligned, judged by
the live quality gates and estimated once (`faces.py`). Faces are scaled and pasted as
`scripts/face_size_sweep.py` does (its `prepare` and `compose`): "face width" is the width of a
16 cm face, measured by the eye distance (63 mm) at full size, and faces turned more than
--max-source-yaw at full size are left out because that ruler is wrong for them.

Reported over the faces whose label age is 18-75 (the range the project's gender bar is set
on) and over all ages: the share of people given a gender and an age bracket (a person never
counted is not given one), the bracket and gender accuracy and age MAE of those given, on
footage and at full size; the bracket accuracy over the same faces both ways (given a bracket
on footage and at full size) and its difference in points, which is the acceptance figure;
the same per width band (40-60, 60-80, 80-120 px); and the visits the pipeline did not count
at all (no confirmed track) or broke into more than one. "Given" at full size means the live
gates let the estimate through; the raw full-size estimate (what `eval` scores, gates
ignored) is in the JSON too.

What this does not model: people turning, looking away or being hidden; several people at
once; motion blur, the ISP's sharpening and denoising, compression artefacts, uneven light.
The faces are UTKFace's aligned, mostly frontal crops on a plain grey background, and a crop
that tight cuts off hair, ears and neck, which a detector would see on a real person: the
smallest faces may be found less often than in a shop, while sharpness and pose are a best
case. No image is written anywhere.

Usage: scripts/footage_demographics.py [--labels DIR|CSV] [--limit 300] [--seed 20261123]
                                       [--widths 40:120] [--frame 1280x720] [--frames 15]
                                       [--fps 12.5] [--noise 0] [--min-face-px 24]
                                       [--json out.json]
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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import PersonVisit
from edge_agent.commands.evaluation.faces import LabelledImage, find_face, load_rgb, read_labels
from edge_agent.config import Config, load_config
from edge_agent.pipeline import FramePipeline
from edge_agent.segments import Brackets, Gender
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.values import VisionSettings, detector_settings

# Run as `python scripts/NAME.py`, the script's folder is on sys.path: the sweep's scaling and
# pasting is reused, not copied, so both scripts mean the same by "a 60 px face".
from face_size_sweep import (  # isort: skip
    CANVAS_GREY,
    REFERENCE_DETECTOR,
    Source,
    compose,
    parse_frame,
    percent,
    prepare,
)

REPO = Path(__file__).resolve().parent.parent
# The dev set lives beside the checkout (../shared); on a machine that copies shared/ into the
# checkout it is inside it.
DEFAULT_LABELS = ("../shared/data/utkface-dev", "shared/data/utkface-dev")
ADULT_AGES = (18.0, 75.0)  # the project's gender bar is set on these label ages
BANDS = ((40, 60), (60, 80), (80, 120))  # width bands, px: [low, high), the last one closed
# Over a visit the face grows by this factor: a few tenths of a metre closer at 2-4 m.
GROWTH = 1.10
# Drift per frame, px: a person shifting or walking slowly, not crossing the frame.
DRIFT_PX = (1.0, 4.0)
# Frames after the person left beyond the tracker's `lost_after_s`, so the track surely ends.
EXTRA_EMPTY_FRAMES = 2


class UsageError(Exception):
    """The command cannot run as asked; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Where and how big the face is in each frame of one visit."""

    width: float  # px at the middle of the visit: what the width bands are drawn on
    start: tuple[float, float]  # face centre in the first frame
    step: tuple[float, float]  # drift per frame, px
    frames: int

    def width_at(self, i: int) -> float:
        # From width/sqrt(GROWTH) to width*sqrt(GROWTH): the drawn width is the middle one.
        middle = (self.frames - 1) / 2
        return self.width * GROWTH ** ((i - middle) / max(self.frames - 1, 1))

    @property
    def largest(self) -> float:
        return self.width_at(self.frames - 1)


def parse_range(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(":"))
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH with 0 < LOW <= HIGH, not {text!r}")
    return low, high


def resolve_labels(given: Path | None) -> Path:
    """The labelled set: a CSV file, a folder of UTKFace-style names, or a folder holding
    either as `images/` or `labels.csv` (the shared dev set's layout)."""
    if given is None:
        candidates = [(REPO / name).resolve() for name in DEFAULT_LABELS]
        found = next((path for path in candidates if path.exists()), None)
        if found is None:
            raise UsageError(f"no labelled set at {candidates[0]}: give one with --labels")
        given = found
    if not given.exists():
        raise UsageError(f"{given}: no such file or folder")
    if given.is_file():
        return given
    if any(read_labels_quietly(given)):
        return given
    for inner in (given / "images", given / "labels.csv"):
        if inner.exists() and any(read_labels_quietly(inner)):
            return inner
    raise UsageError(f"{given}: no UTKFace-style images (age_gender_race_*.jpg) or labels.csv")


def read_labels_quietly(path: Path) -> list[LabelledImage]:
    try:
        return read_labels(path)
    except (OSError, ValueError):
        return []


def make_plan(
    rng: random.Random, widths: tuple[float, float], frame: tuple[int, int], n: int
) -> Plan:
    width = rng.uniform(*widths)
    angle = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(*DRIFT_PX)
    step = (speed * math.cos(angle), speed * math.sin(angle))
    plan = Plan(width, (0.0, 0.0), step, n)
    # Anywhere the whole head (the sweep pastes 4 face widths) stays in the frame all along:
    # a face the frame cuts off is never classified (pipeline.cut_off), which is not what is
    # measured here.
    frame_w, frame_h = frame
    margin = 2.0 * plan.largest + 2
    travel_x, travel_y = step[0] * (n - 1), step[1] * (n - 1)
    low_x, high_x = margin - min(0.0, travel_x), frame_w - margin - max(0.0, travel_x)
    low_y, high_y = margin - min(0.0, travel_y), frame_h - margin - max(0.0, travel_y)
    start = (
        rng.uniform(low_x, high_x) if low_x < high_x else frame_w / 2 - travel_x / 2,
        rng.uniform(low_y, high_y) if low_y < high_y else frame_h / 2 - travel_y / 2,
    )
    return replace(plan, start=start)


class Grain:
    """Sensor-like Gaussian noise, `sigma` grey levels. Drawing 2.7 M normals per 720p frame
    costs more than the pipeline does, so a few fields are drawn once and each frame takes one
    of them at random, shifted by a random offset: no two frames in a row share a pattern."""

    FIELDS = 4

    def __init__(self, sigma: float, frame: tuple[int, int], rng: np.random.Generator) -> None:
        self.rng = rng
        frame_w, frame_h = frame
        # Twice the frame in each direction, so any offset leaves a whole frame to cut out.
        shape = (self.FIELDS, 2 * frame_h, 2 * frame_w, 3)
        self.fields = (
            np.round(rng.standard_normal(shape, dtype=np.float32) * sigma).astype(np.int16)
            if sigma > 0
            else None
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.fields is None:
            return image
        height, width = image.shape[:2]
        k = int(self.rng.integers(self.FIELDS))
        y, x = int(self.rng.integers(height)), int(self.rng.integers(width))
        grain = self.fields[k, y : y + height, x : x + width]
        return np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def visit_frames(
    source: Source, plan: Plan, frame: tuple[int, int], empty_frames: int, grain: Grain
) -> Iterator[np.ndarray]:
    """The visit's frames, made one at a time so only one is ever in memory."""
    for i in range(plan.frames):
        at = (plan.start[0] + plan.step[0] * i, plan.start[1] + plan.step[1] * i)
        image, _ = compose(source, plan.width_at(i), frame, at)
        yield grain(image)
    frame_w, frame_h = frame
    empty = np.full((frame_h, frame_w, 3), CANVAS_GREY, dtype=np.uint8)
    for _ in range(empty_frames):
        yield grain(empty)


def footage_pipeline(
    config: Config, vision: VisionPipeline, visits: list[PersonVisit]
) -> FramePipeline:
    """A fresh pipeline, wired as eval-footage wires it. The VisionPipeline is shared: it
    keeps no state between frames, only its loaded models (rebuilding them per visit would
    only cost time)."""
    # One window for the whole visit: the windowing is not what is measured here.
    audience = Audience(replace(config.audience_settings(), window_s=1e9), visits.append)
    return FramePipeline(
        vision,
        Tracker(config.tracker_settings()),
        DemographicsFusion(config.fusion_settings()),
        audience,
    )


def run_visit(
    config: Config,
    vision: VisionPipeline,
    frames: Iterable[np.ndarray],
    fps: float,
) -> list[PersonVisit]:
    visits: list[PersonVisit] = []
    pipeline = footage_pipeline(config, vision, visits)
    index = 0
    for index, image in enumerate(frames):
        pipeline.process(Frame(index, index / fps, index / fps, image))
    # Nothing should be left open after the empty frames; a flush would count it anyway.
    end = (index + 1) / fps
    pipeline.flush(end, end)
    return visits


def full_size(vision: VisionPipeline, image: np.ndarray) -> dict[str, object]:
    """The face at full size as `eval --mode detect` sees it: one detection on the padded
    crop, aligned, estimated once; `given_*` apply the live gates, `raw_*` do not (eval's
    accuracy figures are on the raw estimate)."""
    detection = find_face(image, vision.detector, "detect")
    if detection is None:
        return {"found": False}
    analyzer = vision.analyzer
    assessment = analyzer.assess(image, detection)
    estimate = analyzer.estimator.estimate(assessment.age_chip, assessment.gender_chip)
    face = analyzer.judge(detection, assessment, estimate)
    return {
        "found": True,
        "gender": face.gender.value,
        "age": None if face.age_years is None else round(face.age_years, 2),
        "bracket": face.age_bracket,
        "raw_gender": "female" if estimate.p_female > 0.5 else "male",
        "raw_age": round(estimate.age_years, 2),
        "reasons": list(face.unknown_reasons),
    }


def person(visits: list[PersonVisit]) -> dict[str, object]:
    """The counted person's estimate: from the longest visit when the track broke up (as
    eval-footage reads a person's demographics)."""
    if not visits:
        return {"visits": 0, "gender": Gender.UNKNOWN.value, "age": None, "bracket": None}
    longest = max(visits, key=lambda visit: visit.dwell_s)
    estimate = longest.estimate
    return {
        "visits": len(visits),
        "gender": estimate.gender.value,
        "age": None if estimate.age_years is None else round(estimate.age_years, 2),
        "bracket": estimate.age_bracket,
        "samples": estimate.samples,
        "dwell_s": round(longest.dwell_s, 2),
    }


def mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def measures(records: list[dict], brackets: Brackets, key: str) -> dict[str, object]:
    """Given share, bracket and gender accuracy of those given, age MAE, for the estimates
    under `key` ("footage" or "full")."""
    given_gender = [r for r in records if r[key].get("gender") not in (None, "unknown")]
    given_bracket = [r for r in records if r[key].get("bracket") is not None]
    return {
        "gender_given_pct": percent(len(given_gender), len(records)),
        "bracket_given_pct": percent(len(given_bracket), len(records)),
        "bracket_accuracy_pct": percent(
            sum(r[key]["bracket"] == brackets.of(r["label_age"]) for r in given_bracket),
            len(given_bracket),
        ),
        "bracket_given": len(given_bracket),
        "gender_accuracy_pct": percent(
            sum(r[key]["gender"] == r["label_gender"] for r in given_gender), len(given_gender)
        ),
        "gender_given": len(given_gender),
        "age_mae_y": mean([abs(r[key]["age"] - r["label_age"]) for r in given_bracket]),
    }


def summarize(records: list[dict], brackets: Brackets) -> dict[str, object]:
    footage = measures(records, brackets, "footage")
    full = measures(records, brackets, "full")
    found = [r for r in records if r["full"]["found"]]
    # The people given a bracket on footage who have one at full size too (nearly all): the
    # same faces both ways, so the difference is the footage alone, not who was left out.
    same = [r for r in records if r["footage"]["bracket"] is not None and r["full"].get("bracket")]

    def right(r: dict, key: str) -> bool:
        return r[key]["bracket"] == brackets.of(r["label_age"])

    footage_same = percent(sum(right(r, "footage") for r in same), len(same))
    full_same = percent(sum(right(r, "full") for r in same), len(same))

    def difference(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 1)

    return {
        "faces": len(records),
        "not_counted": sum(r["footage"]["visits"] == 0 for r in records),
        "fragmented": sum(r["footage"]["visits"] > 1 for r in records),
        "footage": footage,
        "full_size": full,
        "same_faces": {
            "faces": len(same),
            "footage_bracket_accuracy_pct": footage_same,
            "full_size_bracket_accuracy_pct": full_same,
            # The acceptance figure: footage minus full size, over the same people.
            "difference_points": difference(footage_same, full_same),
        },
        # Each over its own given faces (full size: nearly every face).
        "bracket_accuracy_difference_all_given_points": difference(
            footage["bracket_accuracy_pct"], full["bracket_accuracy_pct"]
        ),
        # What `eval --mode detect` scores: every found face, gates ignored.
        "full_size_raw": {
            "found_pct": percent(len(found), len(records)),
            "bracket_accuracy_pct": percent(
                sum(
                    brackets.of(r["full"]["raw_age"]) == brackets.of(r["label_age"]) for r in found
                ),
                len(found),
            ),
            "gender_accuracy_pct": percent(
                sum(r["full"]["raw_gender"] == r["label_gender"] for r in found), len(found)
            ),
            "age_mae_y": mean([abs(r["full"]["raw_age"] - r["label_age"]) for r in found]),
        },
    }


def in_band(width: float, band: tuple[int, int]) -> bool:
    low, high = band
    return low <= width < high or (band == BANDS[-1] and width == high)


def by_band(records: list[dict], brackets: Brackets) -> dict[str, dict[str, object]]:
    result = {}
    for band in BANDS:
        inside = [r for r in records if in_band(r["width"], band)]
        summary = summarize(inside, brackets)
        result[f"{band[0]}-{band[1]}"] = {
            key: summary[key]
            for key in ("faces", "not_counted", "fragmented", "footage", "same_faces")
        }
    return result


def evaluate(args: argparse.Namespace, labels: Path) -> dict[str, object]:
    config = load_config(None)
    settings = config.vision_settings()
    if args.min_face_px is not None:
        settings = replace(
            settings, analyzer=replace(settings.analyzer, min_face_px=args.min_face_px)
        )
    vision = VisionPipeline(settings)
    # The sweep's ruler and source-yaw filter come from its fixed reference detector, so a
    # face is pasted at the same size here as there.
    reference = VisionPipeline(
        VisionSettings(
            models_dir=settings.models_dir, detector=detector_settings(REFERENCE_DETECTOR)
        )
    )
    brackets = settings.analyzer.brackets
    tracker = config.tracker_settings()
    empty_frames = math.ceil(tracker.lost_after_s * args.fps) + EXTRA_EMPTY_FRAMES

    images = read_labels(labels)
    if args.limit and args.limit < len(images):
        images = random.Random(args.seed).sample(images, args.limit)
    plan_rng = random.Random(args.seed + 1)
    grain = Grain(args.noise, args.frame, np.random.default_rng(args.seed + 2))
    records: list[dict] = []
    skipped: dict[str, str] = {}
    seconds: list[float] = []
    for item in tqdm(images, desc="visits", unit="face"):
        image = load_rgb(item.path)
        # Drawn before a face can be skipped, so the other faces' visits do not depend on it.
        plan = make_plan(plan_rng, args.widths, args.frame, args.frames)
        source = prepare(item.path.name, image, reference, args.max_source_yaw)
        if isinstance(source, str):
            skipped[item.path.name] = source
            continue
        if plan.largest > source.face_px:
            # Only ever shrink, as the sweep: an enlarged photo is not what a camera sees.
            skipped[item.path.name] = (
                f"{source.face_px:.0f} px at full size, the visit needs {plan.largest:.0f} px"
            )
            continue
        started = time.perf_counter()
        frames = visit_frames(source, plan, args.frame, empty_frames, grain)
        visits = run_visit(config, vision, frames, args.fps)
        seconds.append(time.perf_counter() - started)
        records.append(
            {
                "face": item.path.name,
                "label_age": item.age,
                "label_gender": item.gender,
                "width": round(plan.width, 1),
                "face_px_full_size": round(source.face_px, 1),
                "footage": person(visits),
                "full": full_size(vision, image),
            }
        )
    adults = [r for r in records if ADULT_AGES[0] <= r["label_age"] <= ADULT_AGES[1]]
    return {
        "command": "scripts/footage_demographics.py " + " ".join(sys.argv[1:]),
        "settings": {
            "labels": str(labels),
            "limit": args.limit,
            "seed": args.seed,
            "widths": list(args.widths),
            "frame": f"{args.frame[0]}x{args.frame[1]}",
            "frames_per_visit": args.frames,
            "empty_frames": empty_frames,
            "fps": args.fps,
            "growth": GROWTH,
            "drift_px_per_frame": list(DRIFT_PX),
            "noise_sigma": args.noise,
            "max_source_yaw": args.max_source_yaw,
            "detector": settings.detector.name,
            "reference_detector": REFERENCE_DETECTOR,
            "analyzer": asdict(settings.analyzer),
            "tracker": asdict(tracker),
            "fusion_samples": config.fusion_settings().samples_needed,
            "full_scan_every": settings.full_scan_every,
            "num_threads": settings.num_threads,
        },
        "adult_ages": list(ADULT_AGES),
        "ages_18_75": summarize(adults, brackets) | {"by_width": by_band(adults, brackets)},
        "all_ages": summarize(records, brackets) | {"by_width": by_band(records, brackets)},
        "faces_skipped": skipped,
        "seconds_per_visit_median": round(statistics.median(seconds), 3) if seconds else None,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "records": records,
    }


def show(value: object, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def format_table(result: dict[str, object]) -> str:
    settings = result["settings"]
    low, high = settings["widths"]
    lines = [
        f"{settings['frame']} frames, faces {low:g}-{high:g} px, {settings['frames_per_visit']}"
        f" frames at {settings['fps']:g} fps per visit, detector {settings['detector']},"
        f" min_face_px {settings['analyzer']['min_face_px']:g}, noise {settings['noise_sigma']:g}",
        "",
        "| measure | ages 18-75: footage | full size | all ages: footage | full size |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    groups = (result["ages_18_75"], result["all_ages"])
    rows = (
        ("gender given", "gender_given_pct", " %"),
        ("bracket given", "bracket_given_pct", " %"),
        ("bracket accuracy of given", "bracket_accuracy_pct", " %"),
        ("gender accuracy of given", "gender_accuracy_pct", " %"),
        ("age MAE of given", "age_mae_y", " y"),
    )
    lines.append("| faces | " + " | ".join(f"{g['faces']} | {g['faces']}" for g in groups) + " |")
    for name, key, suffix in rows:
        cells = [
            f"{show(g['footage'][key], suffix)} | {show(g['full_size'][key], suffix)}"
            for g in groups
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    same = [
        f"{show(g['same_faces']['footage_bracket_accuracy_pct'], ' %')}"
        f" | {show(g['same_faces']['full_size_bracket_accuracy_pct'], ' %')}"
        for g in groups
    ]
    lines.append("| bracket accuracy, same faces | " + " | ".join(same) + " |")
    difference = [show(g["same_faces"]["difference_points"], " pts") for g in groups]
    lines.append(f"| footage - full size, same faces | {difference[0]} | | {difference[1]} | |")
    counts = [f"{g['not_counted']} / {g['fragmented']} |" for g in groups]
    lines.append("| visits not counted / fragmented | " + " | ".join(counts) + " |")
    lines += [
        "",
        "By width band, label ages 18-75 (bracket accuracy over the faces given a bracket on"
        " footage and at full size; the others over those given on footage):",
        "",
        "| width px | faces | not counted | fragmented | bracket given | bracket acc."
        " | full size | diff | gender given | gender acc. | age MAE |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for band, row in result["ages_18_75"]["by_width"].items():
        footage, same = row["footage"], row["same_faces"]
        lines.append(
            f"| {band} | {row['faces']} | {row['not_counted']} | {row['fragmented']}"
            f" | {show(footage['bracket_given_pct'], ' %')}"
            f" | {show(same['footage_bracket_accuracy_pct'], ' %')}"
            f" | {show(same['full_size_bracket_accuracy_pct'], ' %')}"
            f" | {show(same['difference_points'])}"
            f" | {show(footage['gender_given_pct'], ' %')}"
            f" | {show(footage['gender_accuracy_pct'], ' %')}"
            f" | {show(footage['age_mae_y'], ' y')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--labels", type=Path,
        help="UTKFace-style folder, a folder with images/ or labels.csv, or a CSV"
        " (default ../shared/data/utkface-dev beside the checkout)",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=300, help="faces, seeded sample (0: all)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--widths", type=parse_range, default=(40.0, 120.0),
        help="face width range in px, LOW:HIGH, drawn uniformly per visit (default 40:120)",
    )  # fmt: skip
    parser.add_argument(
        "--frame", type=parse_frame, default=(1280, 720), help="frame size (default 1280x720)"
    )
    parser.add_argument("--frames", type=int, default=15, help="frames with the face (default 15)")
    parser.add_argument("--fps", type=float, default=12.5, help="frame rate (default 12.5)")
    parser.add_argument(
        "--noise", type=float, default=0.0,
        help="sigma of Gaussian noise added to every frame, grey levels (default 0; 2-4 is mild)",
    )  # fmt: skip
    parser.add_argument(
        "--min-face-px", type=float, default=None,
        help="override vision.quality.min_face_px (default: the configuration's, 24)",
    )  # fmt: skip
    parser.add_argument(
        "--max-source-yaw", type=float, default=20.0,
        help="leave out faces turned further than this at full size (default 20 degrees)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the numbers and settings to this file")
    args = parser.parse_args()
    if args.frames < 3 or args.fps <= 0:
        print("footage_demographics: --frames must be at least 3, --fps positive", file=sys.stderr)
        return 2
    try:
        labels = resolve_labels(args.labels)
    except UsageError as error:
        print(f"footage_demographics: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    result = evaluate(args, labels)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(format_table(result))
    if result["faces_skipped"]:
        print(f"\n{len(result['faces_skipped'])} face(s) left out: see faces_skipped in --json")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
