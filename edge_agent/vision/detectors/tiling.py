"""Tiled detection: the frame cut into overlapping tiles, each detected on its own, and the
whole frame once more, the faces put back into frame pixels and the doubles removed.

A detector that shrinks the frame to a fixed input loses the small faces; tiles give each part
of the frame the whole input, at the price of one detection per tile. Tiles alone cut the
large faces (a face bigger than a tile, or across a border, is missed or found twice), so the
whole frame is detected too, as SAHI (slicing-aided inference) does. It is one of the
strategies measured for the default (models/MODELS.md, "Choosing the default"); for a model that
can only run at one input size (an Edge TPU compile) it is the way to more pixels.
"""

from __future__ import annotations

import numpy as np

from edge_agent.vision.detectors.base import Detector, iou_one_to_many
from edge_agent.vision.values import Detection


def tile_windows(
    width: int, height: int, columns: int, rows: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each tile: a columns x rows grid whose neighbours overlap by
    `overlap` of a tile, so that a face cut by one border is whole in the next tile."""
    if columns < 1 or rows < 1 or not 0 <= overlap < 1:
        raise ValueError(f"bad tiling {columns}x{rows} with overlap {overlap}")
    tile_w = width / (columns - (columns - 1) * overlap)
    tile_h = height / (rows - (rows - 1) * overlap)
    windows = []
    for row in range(rows):
        for column in range(columns):
            x0 = round(column * tile_w * (1 - overlap))
            y0 = round(row * tile_h * (1 - overlap))
            windows.append(
                (x0, y0, min(width, round(x0 + tile_w)), min(height, round(y0 + tile_h)))
            )
    return windows


class TiledDetector:
    """Runs `detector` on the whole frame and on each tile of a columns x rows grid."""

    def __init__(
        self, detector: Detector, columns: int, rows: int, *, overlap: float = 0.15
    ) -> None:
        self.detector = detector
        self.columns, self.rows, self.overlap = columns, rows, overlap
        self.name = f"{detector.name} tiled {columns}x{rows}"

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]:
        height, width = image.shape[:2]
        found = self.detector.detect(image, min_score)
        for x0, y0, x1, y1 in tile_windows(width, height, self.columns, self.rows, self.overlap):
            found += [
                detection.translated(x0, y0)
                for detection in self.detector.detect(image[y0:y1, x0:x1], min_score)
            ]
        return merge_overlapping(found)


def merge_overlapping(detections: list[Detection], iou_threshold: float = 0.3) -> list[Detection]:
    """The best-scoring of each group of overlapping detections, best first."""
    ordered = sorted(detections, key=lambda detection: -detection.score)
    if not ordered:
        return []
    boxes = np.array([list(detection.box) for detection in ordered], dtype=np.float64)
    kept: list[int] = []
    for index in range(len(ordered)):
        if not kept or (iou_one_to_many(boxes[index], boxes[kept]) < iou_threshold).all():
            kept.append(index)
    return [ordered[index] for index in kept]
