"""Searching only around known faces: regions grow with the face, stay in the frame and merge
when they touch; YuNet finds in a region what the whole-frame scan finds there, and nothing
where there is no face."""

from __future__ import annotations

import pytest

from edge_agent.vision.detectors.regions import regions_around
from edge_agent.vision.detectors.yunet import YuNetDetector
from edge_agent.vision.values import Box
from tests.support.images import place


def test_a_region_is_the_face_grown_by_the_margin_on_every_side():
    assert regions_around([Box(100, 100, 140, 150)], 640, 480, 1.0) == [(60, 50, 180, 200)]


def test_regions_stay_inside_the_frame():
    assert regions_around([Box(5, 440, 45, 480)], 640, 480, 1.0) == [(0, 400, 85, 480)]


def test_touching_regions_merge_and_distant_ones_do_not():
    near = [Box(100, 100, 140, 140), Box(200, 100, 240, 140)]  # grown: 60-180 and 160-280
    assert regions_around(near, 640, 480, 1.0) == [(60, 60, 280, 180)]
    apart = [Box(100, 100, 140, 140), Box(500, 300, 540, 340)]
    assert len(regions_around(apart, 640, 480, 1.0)) == 2


@pytest.fixture(scope="module")
def yunet(models_dir) -> YuNetDetector:
    return YuNetDetector(models_dir)


def test_a_region_finds_the_face_the_whole_frame_scan_finds(yunet, astronaut):
    frame = place(astronaut, (1280, 720), (600, 150), 0.5)
    (whole,) = yunet.detect(frame)
    regions = regions_around([whole.box], 1280, 720, 1.0)
    (found,) = yunet.detect_regions(frame, regions)
    # The same face, in frame pixels, within a few pixels of the whole-frame box.
    assert all(
        abs(a - b) < 0.1 * (whole.box.x1 - whole.box.x0)
        for a, b in zip(found.box, whole.box, strict=True)
    )
    assert abs(found.landmarks.left_eye.x - whole.landmarks.left_eye.x) < 5


def test_a_region_without_a_face_finds_nothing(yunet, astronaut):
    frame = place(astronaut, (1280, 720), (600, 150), 0.5)
    assert yunet.detect_regions(frame, [(0, 0, 300, 300)]) == []
    assert yunet.detect_regions(frame, []) == []
