"""`edge-agent eval`: accuracy of the vision stage on labelled face images.

Labels come from a CSV with `file,age,gender` (paths relative to the CSV) or from UTKFace
style file names `age_gender_race_*.jpg` (gender 0 = male, 1 = female). Two modes:

- `detect`: the configured detector must find the face; each image is padded onto a larger
  canvas first because tight crops leave a detector no context.
- `whole`: the image is the face box. Landmarks come from the short-range detector on the
  image with growing padding; the detection that overlaps the image most is used.
"""

from __future__ import annotations

import csv
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from edge_agent.segments import Brackets
from edge_agent.vision.analyzer import FaceAnalyzer, VisionPipeline
from edge_agent.vision.attributes import AgeGenderEstimator
from edge_agent.vision.detectors.base import Detector
from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
from edge_agent.vision.values import Box, Detection, VisionSettings

Mode = Literal["detect", "whole"]

_UTKFACE_NAME = re.compile(r"^(\d+)_([01])_")
# Padding around a tight crop, as a fraction of its side: `detect` uses the first only,
# `whole` tries the others before giving up.
_PADDINGS = (0.5, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class LabelledImage:
    path: Path
    age: float
    gender: str  # "female" or "male"


def read_labels(source: Path) -> list[LabelledImage]:
    """Labelled images from a CSV file or a folder of UTKFace-style names."""
    if source.is_dir():
        images = []
        for path in sorted(source.iterdir()):
            match = _UTKFACE_NAME.match(path.name)
            if match and path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                gender = "male" if match.group(2) == "0" else "female"
                images.append(LabelledImage(path, float(match.group(1)), gender))
        if not images:
            raise ValueError(f"{source}: no UTKFace-style images (age_gender_race_*.jpg)")
        return images
    with source.open(newline="") as stream:
        reader = csv.DictReader(stream)
        missing = {"file", "age", "gender"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
        images = []
        for line, row in enumerate(reader, start=2):
            gender = row["gender"].strip().lower()
            if gender not in {"female", "male"}:
                raise ValueError(f"{source}:{line}: gender must be female or male, not {gender!r}")
            try:
                age = float(row["age"])
            except ValueError:
                raise ValueError(f"{source}:{line}: age {row['age']!r} is not a number") from None
            images.append(LabelledImage(source.parent / row["file"], age, gender))
        return images


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def pad_canvas(image: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    border = round(max(image.shape[:2]) * fraction)
    # Grey, not black: a black frame around a face is not what cameras see.
    padded = cv2.copyMakeBorder(
        image, border, border, border, border, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    return padded, border


def find_face(image: np.ndarray, detector: Detector, mode: Mode) -> Detection | None:
    """The labelled face in a tight crop, in the crop's own coordinates."""
    height, width = image.shape[:2]
    whole = Box(0, 0, width, height)
    for fraction in _PADDINGS if mode == "whole" else _PADDINGS[:1]:
        canvas, border = pad_canvas(image, fraction)
        detections = [d.translated(-border, -border) for d in detector.detect(canvas)]
        if detections:
            return max(detections, key=lambda d: (d.box.iou(whole), d.score))
    return None


@dataclass
class Tally:
    truth_age: list[float] = field(default_factory=list)
    truth_female: list[bool] = field(default_factory=list)
    age: list[float] = field(default_factory=list)
    p_female: list[float] = field(default_factory=list)
    float_age: list[float] = field(default_factory=list)
    float_p_female: list[float] = field(default_factory=list)
    gated_unknown: int = 0
    unknown_reasons: Counter[str] = field(default_factory=Counter)
    missed: int = 0
    detect_ms: list[float] = field(default_factory=list)
    classify_ms: list[float] = field(default_factory=list)


def evaluate(
    images: list[LabelledImage],
    settings: VisionSettings,
    mode: Mode,
    *,
    compare_float: bool = False,
    progress: bool = True,
) -> tuple[dict[str, object], Tally]:
    pipeline = VisionPipeline(settings)
    detector = pipeline.detector
    if mode == "whole" and settings.detector.name != "short_range":
        # Tight crops suit the short-range model; the configured one may be full-range.
        detector = BlazeFaceDetector(
            settings.models_dir, "short_range", num_threads=settings.num_threads
        )
    reference = (
        AgeGenderEstimator(settings.models_dir, precision="float32", num_threads=1)
        if compare_float
        else None
    )
    tally = Tally()
    for item in tqdm(images, desc=f"eval ({mode})", unit="img", disable=not progress):
        image = load_rgb(item.path)
        started = time.perf_counter()
        detection = find_face(image, detector, mode)
        tally.detect_ms.append((time.perf_counter() - started) * 1000)
        if detection is None:
            tally.missed += 1
            continue
        _score_face(pipeline.analyzer, reference, image, detection, item, tally)
    return summarize(images, tally, settings.analyzer.brackets, mode), tally


def _score_face(
    analyzer: FaceAnalyzer,
    reference: AgeGenderEstimator | None,
    image: np.ndarray,
    detection: Detection,
    item: LabelledImage,
    tally: Tally,
) -> None:
    started = time.perf_counter()
    assessment = analyzer.assess(image, detection)
    estimate = analyzer.estimator.estimate(assessment.age_chip, assessment.gender_chip)
    tally.classify_ms.append((time.perf_counter() - started) * 1000)
    # Accuracy is scored on the raw estimate, as the peer's figures are; how often the
    # live quality gates would say "unknown" is reported beside it.
    reasons = analyzer.judge(detection, assessment, estimate).unknown_reasons
    if reasons:
        tally.gated_unknown += 1
        tally.unknown_reasons.update(reasons)
    tally.truth_age.append(item.age)
    tally.truth_female.append(item.gender == "female")
    tally.age.append(estimate.age_years)
    tally.p_female.append(estimate.p_female)
    if reference is not None:
        float_estimate = reference.estimate(assessment.age_chip, assessment.gender_chip)
        tally.float_age.append(float_estimate.age_years)
        tally.float_p_female.append(float_estimate.p_female)


def summarize(
    images: list[LabelledImage], tally: Tally, brackets: Brackets, mode: Mode
) -> dict[str, object]:
    truth_age, age = np.array(tally.truth_age), np.array(tally.age)
    truth_female, female = np.array(tally.truth_female), np.array(tally.p_female) > 0.5
    found = len(age)
    adults = (truth_age >= 18) & (truth_age <= 75)
    up_to_80 = truth_age <= 80
    brackets_true = [brackets.of(a) for a in truth_age]
    brackets_pred = [brackets.of(a) for a in age]

    def share(mask: np.ndarray) -> float | None:
        return round(float(mask.mean()) * 100, 2) if mask.size else None

    result: dict[str, object] = {
        "mode": mode,
        "images": len(images),
        "faces_scored": found,
        "detection_rate": round(found / len(images) * 100, 2) if images else None,
        "gender_accuracy": share(female == truth_female),
        "gender_accuracy_18_75": share((female == truth_female)[adults]),
        "age_mae_0_80": (
            round(float(np.abs(age - truth_age)[up_to_80].mean()), 3) if up_to_80.any() else None
        ),
        "bracket_accuracy": share(np.array(brackets_true) == np.array(brackets_pred)),
        "live_gates_unknown_rate": round(tally.gated_unknown / found * 100, 2) if found else None,
        "live_gates_reasons": dict(sorted(tally.unknown_reasons.items())),
        "median_detect_ms": _median(tally.detect_ms),
        "median_align_classify_ms": _median(tally.classify_ms),
    }
    if tally.float_age:
        float_age = np.array(tally.float_age)
        float_female = np.array(tally.float_p_female) > 0.5
        result["int8_vs_float_gender_agreement"] = share(float_female == female)
        result["int8_vs_float_mean_abs_age_diff"] = round(float(np.abs(float_age - age).mean()), 3)
        result["float_gender_accuracy_18_75"] = share((float_female == truth_female)[adults])
        result["float_age_mae_0_80"] = round(
            float(np.abs(float_age - truth_age)[up_to_80].mean()), 3
        )
    return result


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def format_table(result: dict[str, object]) -> str:
    width = max(len(key) for key in result)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in result.items())


def write_plots(tally: Tally, brackets: Brackets, directory: Path) -> list[Path]:
    """Bracket confusion matrix and predicted-vs-true age as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    labels = brackets.labels
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for truth, predicted in zip(tally.truth_age, tally.age, strict=True):
        matrix[index[brackets.of(truth)], index[brackets.of(predicted)]] += 1
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted bracket")
    axes.set_ylabel("true bracket")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set_title("Age bracket confusion")
    figure.tight_layout()
    confusion = directory / "bracket_confusion.png"
    figure.savefig(confusion, dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(6, 5))
    axes.scatter(tally.truth_age, tally.age, s=6, alpha=0.4)
    axes.plot([0, 100], [0, 100], color="grey", linewidth=1)
    axes.set_xlabel("true age (years)")
    axes.set_ylabel("predicted age (years)")
    axes.set_title("Predicted vs. true age")
    figure.tight_layout()
    scatter = directory / "age_scatter.png"
    figure.savefig(scatter, dpi=110)
    plt.close(figure)
    return [confusion, scatter]
