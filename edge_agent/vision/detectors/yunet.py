"""The `yunet` family: libfacedetection's YuNet, a detector made for small faces.

The frame is scaled, keeping its shape, to about `input_pixels` pixels (640 x 360 by default:
a 1280x720 frame is halved) and padded on the right and bottom to multiples of 32. The model
(fully convolutional, converted by scripts/convert_models.py with its input resizable) gives,
at strides 8, 16 and 32, a class and an objectness score, a
box and five keypoints per cell, anchor-free. A face's score is sqrt(class x objectness), as
in OpenCV's `FaceDetectorYN`; overlapping faces are reduced by non-maximum suppression.

YuNet's five keypoints are the eye centres, the nose tip and the mouth corners. The alignment
wants BlazeFace's mouth centre (the middle of the inner lips), so it is placed from the corners
where dlib's mean face has it; there are no ear keypoints (pose falls back to the eyes).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision import align
from edge_agent.vision.detectors.base import iou_one_to_many
from edge_agent.vision.models import detector_model, model_path
from edge_agent.vision.runtime import TfliteModel
from edge_agent.vision.values import Box, Delegate, Detection, Landmarks, Point, YuNetSettings

STRIDES = (8, 16, 32)
NMS_IOU = 0.3  # OpenCV's FaceDetectorYN default
# The project's face box is BlazeFace's, so that the tracker, the gates and every evaluation see
# one shape whatever the detector. YuNet's boxes are narrower and reach higher (more forehead,
# less chin); on 484 faces both found in real crowd photos (scripts/detector_calibration.py,
# median ratios) YuNet's width was 0.920 of BlazeFace's, its height 1.174, and its centre
# 0.056 of BlazeFace's height higher.
_WIDTH_TO_BLAZEFACE = 1 / 0.920
_HEIGHT_TO_BLAZEFACE = 1 / 1.174
_SHIFT_DOWN = 0.056
# The input's sides must divide by the coarsest stride for the feature pyramid to line up.
_ALIGN = 32


def _mouth_centre_offset() -> tuple[float, float]:
    """Where the inner-lip centre lies from the mouth corners' midpoint on dlib's mean face,
    along the eye line and across it, in eye distances."""
    right_eye = np.array(align.mean_face_point(36, 37, 38, 39, 40, 41))
    left_eye = np.array(align.mean_face_point(42, 43, 44, 45, 46, 47))
    corners = np.array(align.mean_face_point(48, 54))
    lips = np.array(align.mean_face_point(60, 61, 62, 63, 64, 65, 66, 67))
    along = left_eye - right_eye
    distance = float(np.hypot(*along))
    along /= distance
    across = np.array([-along[1], along[0]])
    offset = lips - corners
    return float(offset @ along) / distance, float(offset @ across) / distance


MOUTH_OFFSET = _mouth_centre_offset()


def input_size(width: int, height: int, input_pixels: int) -> tuple[float, int, int, int, int]:
    """(scale, scaled width, scaled height, input width, input height) for a frame: scaled,
    keeping its shape, to about `input_pixels` pixels (the model's cost goes with the pixels,
    so every frame shape costs the same), then padded to multiples of 32."""
    scale = math.sqrt(input_pixels / (width * height))
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (
        scale,
        scaled_w,
        scaled_h,
        math.ceil(scaled_w / _ALIGN) * _ALIGN,
        math.ceil(scaled_h / _ALIGN) * _ALIGN,
    )


def scale_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking keeps small faces intact."""
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    if width < image.shape[1]:
        if image.shape[1] <= 2 * width:
            return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        # INTER_AREA is fast only for whole ratios: go bilinearly to twice, then halve.
        double = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(double, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


class YuNetDetector:
    """Finds faces in RGB frames of any size; boxes and keypoints come back in frame pixels."""

    def __init__(
        self,
        models_dir: Path,
        settings: YuNetSettings | None = None,
        *,
        num_threads: int = 1,
        delegate: Delegate = "cpu",
    ) -> None:
        self.settings = settings or YuNetSettings()
        self.name = self.settings.name
        self.model = TfliteModel(
            model_path(models_dir, detector_model(self.settings)),
            num_threads=num_threads,
            delegate=delegate,
        )
        self._layout: tuple[tuple[int, int, int, int], ...] = ()

    def detect(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        scale, scaled_w, scaled_h, input_w, input_h = input_size(
            width, height, self.settings.input_pixels
        )
        canvas = np.zeros((input_h, input_w, 3), dtype=np.uint8)
        canvas[:scaled_h, :scaled_w] = scale_image(image, scaled_w, scaled_h)
        self._prepare(input_h, input_w)
        outputs = self.model.run(canvas[np.newaxis])
        boxes, keypoints, scores = self._decode(outputs, input_h)
        if scores.size == 0:
            return []
        boxes /= scale
        keypoints /= scale
        return [
            _detection(boxes[i], keypoints[i], float(scores[i]))
            for i in _nms(boxes, scores, NMS_IOU)
        ]

    def _prepare(self, input_h: int, input_w: int) -> None:
        """Resize the model's input to this frame's size (once per size) and find, for each
        stride, which outputs are its scores, box and keypoints (by shape: names differ)."""
        shape = (1, input_h, input_w, 3)
        if self._layout and self.model.input.shape == shape:
            return
        self.model.resize_input(shape)
        layout = []
        for stride in STRIDES:
            rows = input_h // stride
            ones, box, points = [], None, None
            for index, spec in enumerate(self.model.outputs):
                if spec.shape[1] != rows:
                    continue
                if spec.shape[-1] == 1:
                    ones.append(index)
                elif spec.shape[-1] == 4:
                    box = index
                elif spec.shape[-1] == 10:
                    points = index
            if len(ones) != 2 or box is None or points is None:
                shapes = [spec.shape for spec in self.model.outputs]
                raise ValueError(f"{self.model.path.name}: unexpected outputs {shapes}")
            # Class and objectness enter the score as a product: their order does not matter.
            layout.append((ones[0], ones[1], box, points))
        self._layout = tuple(layout)

    def _decode(
        self, outputs: tuple[np.ndarray, ...], input_h: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        all_boxes, all_points, all_scores = [], [], []
        threshold = self.settings.min_score**2
        for stride, (cls, obj, box, points) in zip(STRIDES, self._layout, strict=True):
            product = np.clip(outputs[cls][0, ..., 0], 0, 1) * np.clip(
                outputs[obj][0, ..., 0], 0, 1
            )
            rows, cols = np.nonzero(product >= threshold)
            if rows.size == 0:
                continue
            cells = np.stack([cols, rows], axis=1).astype(np.float32)
            raw = outputs[box][0, rows, cols]
            centres = (cells + raw[:, :2]) * stride
            sizes = np.exp(raw[:, 2:4]) * stride
            all_boxes.append(np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1))
            marks = outputs[points][0, rows, cols].reshape(-1, 5, 2)
            all_points.append((marks + cells[:, None, :]) * stride)
            all_scores.append(np.sqrt(product[rows, cols]))
        if not all_scores:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        return np.concatenate(all_boxes), np.concatenate(all_points), np.concatenate(all_scores)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of the faces kept, best first: each suppresses the ones overlapping it."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            overlaps = iou_one_to_many(boxes[best], boxes[order])
            order = [
                i for i, overlap in zip(order, overlaps, strict=True) if overlap < iou_threshold
            ]
    return keep


def blazeface_box(box: np.ndarray) -> Box:
    """A YuNet box (x0, y0, x1, y1) in BlazeFace's shape."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    width = (box[2] - box[0]) * _WIDTH_TO_BLAZEFACE
    height = (box[3] - box[1]) * _HEIGHT_TO_BLAZEFACE
    centre_y += _SHIFT_DOWN * height
    return Box(
        float(centre_x - width / 2),
        float(centre_y - height / 2),
        float(centre_x + width / 2),
        float(centre_y + height / 2),
    )


def _detection(box: np.ndarray, points: np.ndarray, score: float) -> Detection:
    right_eye, left_eye, nose, mouth_right, mouth_left = points
    along = left_eye - right_eye
    across = np.array([-along[1], along[0]])
    mouth = (mouth_right + mouth_left) / 2 + MOUTH_OFFSET[0] * along + MOUTH_OFFSET[1] * across
    return Detection(
        box=blazeface_box(box),
        score=score,
        landmarks=Landmarks(
            Point(float(right_eye[0]), float(right_eye[1])),
            Point(float(left_eye[0]), float(left_eye[1])),
            Point(float(nose[0]), float(nose[1])),
            Point(float(mouth[0]), float(mouth[1])),
        ),
    )
