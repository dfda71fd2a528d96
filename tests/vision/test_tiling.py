"""Tiled detection: tiles cover the frame with overlap, faces come back in frame pixels, and a
face seen both whole and on a tile is reported once."""

from __future__ import annotations

import pytest

from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
from edge_agent.vision.detectors.tiling import TiledDetector, merge_overlapping, tile_windows
from edge_agent.vision.values import Box, Detection, Landmarks, Point
from tests.support.images import place


def test_tiles_cover_the_frame_and_overlap():
    windows = tile_windows(1280, 720, 2, 2, 0.15)
    assert len(windows) == 4
    assert windows[0][:2] == (0, 0) and windows[-1][2:] == (1280, 720)
    left, right = windows[0], windows[1]
    assert left[2] - right[0] == pytest.approx(0.15 * (left[2] - left[0]), abs=1)
    covered = {(x, y) for x in range(0, 1280, 40) for y in range(0, 720, 40)}
    assert all(any(w[0] <= x < w[2] and w[1] <= y < w[3] for w in windows) for x, y in covered)


@pytest.mark.parametrize("bad", [(0, 1, 0.1), (2, 2, 1.0), (2, 2, -0.1)])
def test_bad_tilings_are_refused(bad):
    with pytest.raises(ValueError, match="tiling"):
        tile_windows(640, 480, *bad)


def detection(x0: float, score: float) -> Detection:
    points = Landmarks(*(Point(x0 + 10, 20) for _ in range(4)))
    return Detection(Box(x0, 0, x0 + 40, 40), score, points)


def test_overlapping_detections_merge_to_the_best():
    merged = merge_overlapping([detection(0, 0.6), detection(5, 0.9), detection(100, 0.7)])
    assert [d.score for d in merged] == [0.9, 0.7]


def test_a_face_in_a_tiled_frame_is_found_once_where_it_is(models_dir, astronaut):
    # Half-way over the border between two tiles: whole in the frame pass and in one tile.
    frame = place(astronaut, (1280, 720), at=(450, 100), scale=0.6)
    tiled = TiledDetector(BlazeFaceDetector(models_dir, "full_range_int8"), 2, 1)
    assert tiled.name == "full_range_int8 tiled 2x1"
    found = tiled.detect(frame)
    assert len(found) == 1
    box = found[0].box
    assert 450 + 0.6 * 180 - 15 < box.x0 < 450 + 0.6 * 180 + 15
