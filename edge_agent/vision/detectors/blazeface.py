"""The `blazeface` family: MediaPipe BlazeFace. Letterbox, invoke, decode anchors, weighted NMS."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision.detectors.base import iou_one_to_many
from edge_agent.vision.models import detector_model, model_path
from edge_agent.vision.runtime import TfliteModel
from edge_agent.vision.values import (
    BlazeFaceSettings,
    BlazeFaceVariant,
    Box,
    Delegate,
    Detection,
    Landmarks,
    Point,
)

KEYPOINTS = 6
# Raw scores are clipped before the sigmoid, as MediaPipe's calculator does.
SCORE_CLIP = 100.0


@dataclass(frozen=True, slots=True)
class AnchorOptions:
    input_size: int
    strides: tuple[int, ...]
    # MediaPipe adds one extra anchor per cell when this is 1.0 (two per stride layer).
    interpolated_scale_aspect_ratio: float


# From MediaPipe's face_detection_{short,full}_range graphs.
ANCHOR_OPTIONS: dict[BlazeFaceVariant, AnchorOptions] = {
    "short_range": AnchorOptions(128, (8, 16, 16, 16), 1.0),
    "full_range": AnchorOptions(192, (4,), 0.0),
    "full_range_sparse": AnchorOptions(192, (4,), 0.0),
    # The full-range network quantized by scripts/convert_models.py: same anchors.
    "full_range_int8": AnchorOptions(192, (4,), 0.0),
}


def ssd_anchor_centers(options: AnchorOptions) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1] input coordinates, in the model's output order."""
    centers: list[np.ndarray] = []
    layer = 0
    strides = options.strides
    while layer < len(strides):
        same = layer
        per_cell = 0
        while same < len(strides) and strides[same] == strides[layer]:
            per_cell += 2 if options.interpolated_scale_aspect_ratio == 1.0 else 1
            same += 1
        cells = math.ceil(options.input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centers.append(np.repeat(grid, per_cell, axis=0))
        layer = same
    return np.concatenate(centers).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was fitted into the square model input (to map results back)."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xy: np.ndarray, input_size: int) -> np.ndarray:
        pad = np.array([self.pad_x, self.pad_y], dtype=np.float32)
        return (xy * input_size - pad) / self.scale


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit an RGB image into size x size keeping its aspect ratio, padding with black."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = _shrink(image, new_w, new_h)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y)


def _shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average down to (width, height) without INTER_AREA's slow fractional path.

    Area averaging keeps small, distant faces intact, but OpenCV only does it fast for whole
    ratios: go bilinearly to twice the target (a gentle step), then halve exactly.
    """
    if image.shape[1] <= 2 * width:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    double = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(double, (width, height), interpolation=cv2.INTER_AREA)


class BlazeFaceDetector:
    """Finds faces in RGB frames of any size; boxes and keypoints come back in frame pixels."""

    def __init__(
        self,
        models_dir: Path,
        variant: BlazeFaceVariant = "full_range_int8",
        *,
        min_score: float = 0.5,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        delegate: Delegate = "cpu",
    ) -> None:
        if variant not in ANCHOR_OPTIONS:
            raise ValueError(f"unknown detector variant {variant!r}: {', '.join(ANCHOR_OPTIONS)}")
        self.variant = variant
        self.name = variant
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.options = ANCHOR_OPTIONS[variant]
        self.model = TfliteModel(
            model_path(models_dir, detector_model(BlazeFaceSettings(variant=variant))),
            num_threads=num_threads,
            delegate=delegate,
        )
        self.anchors = ssd_anchor_centers(self.options)
        self._boxes_out = self.model.output_by_last_dim(4 + 2 * KEYPOINTS)
        self._scores_out = self.model.output_by_last_dim(1)
        if self.model.outputs[self._boxes_out].shape[1] != len(self.anchors):
            raise ValueError(f"{self.model.path.name}: output count does not match the anchors")

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]:
        threshold = self.min_score if min_score is None else min_score
        size = self.options.input_size
        canvas, box = letterbox(image, size)
        batch = (canvas.astype(np.float32) * np.float32(1 / 127.5) - 1.0)[np.newaxis]
        outputs = self.model.run(batch)
        raw_scores = outputs[self._scores_out][0, :, 0]
        # Threshold on the logit first: decoding 2304 anchors to find 2 faces is waste.
        logit_threshold = math.log(threshold / (1.0 - threshold))
        candidates = np.flatnonzero(raw_scores >= logit_threshold)
        if candidates.size == 0:
            return []
        logits = np.clip(raw_scores[candidates], -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        raw = outputs[self._boxes_out][0, candidates] / np.float32(size)
        anchors = self.anchors[candidates]
        centers = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2
        corners = np.concatenate([centers - half, centers + half], axis=1)
        keypoints = raw[:, 4:].reshape(-1, KEYPOINTS, 2) + anchors[:, np.newaxis, :]
        corners = box.to_frame(corners.reshape(-1, 2), size).reshape(-1, 4)
        keypoints = box.to_frame(keypoints.reshape(-1, 2), size).reshape(-1, KEYPOINTS, 2)
        return weighted_nms(corners, keypoints, scores, self.nms_iou)


def weighted_nms(
    corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: overlapping candidates are averaged,
    weighted by score, which steadies boxes and keypoints from frame to frame."""
    order = np.argsort(-scores)
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    detections: list[Detection] = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlaps = iou_one_to_many(corners[i], corners) >= iou_threshold
        members = remaining & overlaps
        members[i] = True
        remaining &= ~members
        weights = scores[members] / scores[members].sum()
        mean_box = (corners[members] * weights[:, None]).sum(axis=0)
        mean_points = (keypoints[members] * weights[:, None, None]).sum(axis=0)
        detections.append(
            Detection(
                box=Box(*(float(v) for v in mean_box)),
                score=float(scores[i]),
                landmarks=Landmarks(*(Point(float(x), float(y)) for x, y in mean_points)),
            )
        )
    return detections
