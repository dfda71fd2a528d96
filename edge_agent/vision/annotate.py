"""Debug drawing: boxes, keypoints and labels on a copy of an image (written only on request)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.segments import Gender
from edge_agent.vision.values import Box, Face

_COLOURS = {Gender.FEMALE: (220, 60, 160), Gender.MALE: (40, 120, 230), Gender.UNKNOWN: (160,) * 3}


def annotate(image: np.ndarray, faces: list[Face], destination: Path) -> None:
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for face in faces:
        colour = _COLOURS[face.gender][::-1]
        box = face.detection.box
        cv2.rectangle(canvas, (int(box.x0), int(box.y0)), (int(box.x1), int(box.y1)), colour, 2)
        for point in filter(None, face.detection.landmarks):
            cv2.circle(canvas, (int(point.x), int(point.y)), 2, (0, 255, 0), -1)
        age = "?" if face.age_years is None else f"{face.age_years:.0f}"
        label = f"{face.gender.value} {age}"
        cv2.putText(
            canvas, label, (int(box.x0), max(12, int(box.y0) - 6)),
            cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA,
        )  # fmt: skip
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(destination), canvas):
        raise ValueError(f"{destination}: could not write the annotated image")


def annotate_boxes(image: np.ndarray, labelled: list[tuple[Box, str]], destination: Path) -> None:
    """Boxes with a label each (e.g. track ids) on a copy of an RGB image, written as JPEG."""
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for box, label in labelled:
        corner = (int(box.x0), int(box.y0))
        cv2.rectangle(canvas, corner, (int(box.x1), int(box.y1)), (0, 200, 255), 2)
        cv2.putText(
            canvas, label, (corner[0], max(12, corner[1] - 6)),
            cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 255), 1, cv2.LINE_AA,
        )  # fmt: skip
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(destination), canvas):
        raise ValueError(f"{destination}: could not write the annotated image")
