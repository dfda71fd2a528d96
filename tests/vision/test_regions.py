"""Searching only around known faces: regions grow with the face, stay in the frame and merge
when they touch; YuNet finds in a region what the whole-frame scan finds there, also when it
sees the region smaller, and nothing where there is no face."""

from __future__ import annotations

import pytest

from edge_agent.vision.detectors.regions import Region, merged, regions_around
from edge_agent.vision.detectors.yunet import REGION_FACE_PX, YuNetDetector
from edge_agent.vision.values import Box
from tests.support.images import place


def bounds(regions: list[Region]) -> list[tuple[int, int, int, int]]:
    return [(r.x0, r.y0, r.x1, r.y1) for r in regions]


def test_a_region_is_the_face_grown_by_the_margin_on_every_side():
    (region,) = regions_around([Box(100, 100, 140, 150)], 640, 480, 1.0)
    assert bounds([region]) == [(60, 50, 180, 200)]
    assert region.face_width == 40  # the face may be seen smaller


def test_regions_stay_inside_the_frame():
    assert bounds(regions_around([Box(5, 440, 45, 480)], 640, 480, 1.0)) == [(0, 400, 85, 480)]


def test_touching_regions_merge_and_distant_ones_do_not():
    near = [Box(100, 100, 140, 140), Box(200, 100, 260, 160)]  # grown: 60-180 and 140-320
    (region,) = regions_around(near, 640, 480, 1.0)
    assert bounds([region]) == [(60, 40, 320, 220)]
    assert region.face_width == 40  # the narrower face decides how small it may be seen
    apart = [Box(100, 100, 140, 140), Box(500, 300, 540, 340)]
    assert len(regions_around(apart, 640, 480, 1.0)) == 2


def test_a_face_being_classified_makes_its_region_full_detail():
    regions = regions_around(
        [Box(100, 100, 140, 140)], 640, 480, 1.0, full_detail=[Box(150, 100, 190, 140)]
    )
    assert [r.face_width for r in regions] == [0.0]  # merged: full detail wins
    apart = regions_around(
        [Box(100, 100, 140, 140)], 640, 480, 1.0, full_detail=[Box(500, 300, 540, 340)]
    )
    assert sorted(r.face_width for r in apart) == [0.0, 40]


def test_merging_joins_chains_of_regions():
    chain = [Region(0, 0, 10, 10), Region(30, 0, 40, 10), Region(10, 0, 30, 10, 25.0)]
    assert merged(chain) == [Region(0, 0, 40, 10, 0.0)]


@pytest.fixture(scope="module")
def yunet(models_dir) -> YuNetDetector:
    return YuNetDetector(models_dir)


@pytest.mark.parametrize("seen_smaller", [False, True])
def test_a_region_finds_the_face_the_whole_frame_scan_finds(yunet, astronaut, seen_smaller):
    frame = place(astronaut, (1280, 720), (500, 40), 1.3)
    (whole,) = yunet.detect(frame)
    if seen_smaller:
        regions = regions_around([whole.box], 1280, 720, 0.75)
        # The full scan sees this face at half its width: the region sees it at
        # REGION_FACE_PX, well under that.
        assert whole.box.width * 0.5 > 1.4 * REGION_FACE_PX
    else:
        regions = regions_around([], 1280, 720, 0.75, full_detail=[whole.box])
    (found,) = yunet.detect_regions(frame, regions)
    # The same face, in frame pixels, close to the whole-frame box.
    assert all(
        abs(a - b) < 0.1 * whole.box.width for a, b in zip(found.box, whole.box, strict=True)
    )
    assert abs(found.landmarks.left_eye.x - whole.landmarks.left_eye.x) < 0.06 * whole.box.width


def test_a_region_without_a_face_finds_nothing(yunet, astronaut):
    frame = place(astronaut, (1280, 720), (600, 150), 0.5)
    assert yunet.detect_regions(frame, [Region(0, 0, 300, 300)]) == []
    assert yunet.detect_regions(frame, []) == []
