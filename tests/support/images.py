"""Building test frames from real photos, and what the models see in them."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.segments import DEFAULT_BRACKETS, Gender, segment_name


def place(image: np.ndarray, size: tuple[int, int], at: tuple[int, int], scale: float = 1.0):
    """Paste a (scaled) image onto a grey canvas of `size` (w, h) at `at` (x, y)."""
    width, height = size
    canvas = np.full((height, width, 3), 114, dtype=np.uint8)
    scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x, y = at
    h, w = scaled.shape[:2]
    canvas[y : y + h, x : x + w] = scaled
    return canvas


# What the vision stage makes of the astronaut portrait (the `astronaut` fixture): a woman of
# about 28 (tests/vision/test_analyzer.py), so her segment is the one of that age.
ASTRONAUT_SEGMENT = segment_name(Gender.FEMALE, DEFAULT_BRACKETS.of(28))
