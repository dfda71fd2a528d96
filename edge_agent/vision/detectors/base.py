"""What every detector family is: one `detect(image)` that finds faces in an RGB frame of any
size and returns them in that frame's pixels, and the geometry helpers the families share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from edge_agent.vision.detectors.regions import Region
from edge_agent.vision.values import Detection


class Detector(Protocol):
    name: str  # the detector's name (vision.values.DetectorName)

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Faces in an RGB uint8 HxWx3 image, best first; boxes and landmarks in its pixels.
        `min_score` overrides the configured threshold for this call (the tracker asks for
        weaker detections to keep its tracks alive)."""
        ...


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can also search only parts of a frame, seeing them as a whole-frame
    scan would (YuNet; a fixed-input model such as BlazeFace cannot)."""

    name: str

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]: ...

    def detect_regions(
        self,
        image: np.ndarray,
        regions: list[Region],
        min_score: float | None = None,
        *,
        coarse: bool = False,
    ) -> list[Detection]:
        """Faces inside these parts of the image, in the image's pixels; with `coarse`, also
        the larger faces anywhere, from a cheap low-resolution scan."""
        ...


def iou_one_to_many(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each row of `many`."""
    ix = np.clip(np.minimum(one[2], many[:, 2]) - np.maximum(one[0], many[:, 0]), 0, None)
    iy = np.clip(np.minimum(one[3], many[:, 3]) - np.maximum(one[1], many[:, 1]), 0, None)
    inter = ix * iy
    area_one = (one[2] - one[0]) * (one[3] - one[1])
    area_many = (many[:, 2] - many[:, 0]) * (many[:, 3] - many[:, 1])
    return inter / np.maximum(area_one + area_many - inter, 1e-9)
