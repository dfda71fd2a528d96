"""Where the picture changed since the last look: the daemon's full scans search only there.

A shop camera is still, and most of its picture is shelves and floor. A face that was not in
the last full scan and is in this one arrived by moving (walked in, stepped out from behind
someone, turned to the camera), so the picture changed where it is now. The daemon's full scan
therefore searches the parts that changed since the previous full scan, and around the faces it
follows (pipeline.py); where nothing changed, the previous scan's answer still holds. Frigate's
object detection runs only on motion regions for the same reason.

The comparison is coarse on purpose: grey, area-averaged to `GRID_WIDTH` cells across, which
averages sensor noise away and costs a few hundredths of a millisecond. When much of the
picture changed (a crowd, a light switched, the camera's exposure), `changed_regions` says so
and the daemon scans the whole frame, as it would without this module.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_agent.vision.detectors.regions import Region, merged

# Cells across the frame: 8 px cells at 640x480, 16 px at 1280x720, small enough that a
# 20 px face's movement changes whole cells.
GRID_WIDTH = 80
# A cell changed when its mean grey level moved by more than this (of 255). Averaging 64 or
# more pixels leaves sensor noise well under it; a face or body passing moves cells by tens.
CHANGE_LEVEL = 10
# A changed area grows by this many cells on every side: a face at its edge, or one whose
# only change was a turn of the head, is searched with the context the detector needs.
GROW_CELLS = 3
# When changed areas cover more than this share of the frame, the whole frame is scanned:
# as cheap as the pieces, and nothing near their edges is cut.
MAX_CHANGED_SHARE = 0.5


class MotionGate:
    """Compares each frame it is shown with the one shown before it. The one it keeps is the
    80-cell grey thumbnail, in memory only: a face is a cell or two in it."""

    def __init__(self) -> None:
        self._reference: np.ndarray | None = None
        self._frame_shape: tuple[int, ...] = ()

    def changed_regions(self, image: np.ndarray) -> list[Region] | None:
        """The parts of this RGB frame that changed since the previous call, in frame
        pixels; None when the whole frame should be scanned (the first frame, a new frame
        size, or most of the picture changed)."""
        height, width = image.shape[:2]
        rows = max(1, round(height * GRID_WIDTH / width))
        grey = cv2.cvtColor(
            cv2.resize(image, (GRID_WIDTH, rows), interpolation=cv2.INTER_AREA),
            cv2.COLOR_RGB2GRAY,
        )
        reference, self._reference = self._reference, grey
        same_size = image.shape == self._frame_shape
        self._frame_shape = image.shape
        if reference is None or not same_size:
            return None
        changed = (cv2.absdiff(grey, reference) > CHANGE_LEVEL).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        regions = merged(
            _grown((x, y, w, h), (width / GRID_WIDTH, height / rows), width, height)
            for x, y, w, h, _ in stats[1:count]
        )
        if sum(region.area for region in regions) > MAX_CHANGED_SHARE * width * height:
            return None
        return regions


def _grown(
    block: tuple[int, int, int, int], cell: tuple[float, float], width: int, height: int
) -> Region:
    """A changed block of cells (x, y, w, h), grown by `GROW_CELLS`, in frame pixels within
    the frame."""
    x, y, w, h = block
    cell_w, cell_h = cell
    return Region(
        max(0, math.floor((x - GROW_CELLS) * cell_w)),
        max(0, math.floor((y - GROW_CELLS) * cell_h)),
        min(width, math.ceil((x + w + GROW_CELLS) * cell_w)),
        min(height, math.ceil((y + h + GROW_CELLS) * cell_h)),
    )
