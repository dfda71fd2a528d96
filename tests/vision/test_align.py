from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.vision import align


def _similarity(points: np.ndarray, scale: float, degrees: float, shift: tuple[float, float]):
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return points @ (scale * rotation).T + np.array(shift)


def test_landmarks_on_the_template_give_back_scale_angle_and_centre():
    size = 64
    chip_points = align.chip_template(align.BLAZEFACE_POINTS, size)
    frame_points = _similarity(chip_points, 2.5, 30, (300, 200))
    geometry = align.chip_geometry(frame_points, align.BLAZEFACE_POINTS, size)
    assert geometry.scale == pytest.approx(2.5)
    assert math.degrees(geometry.angle) == pytest.approx(30)
    centre = _similarity(np.array([[size / 2, size / 2]]), 2.5, 30, (300, 200))[0]
    assert (geometry.center_x, geometry.center_y) == pytest.approx(tuple(centre))


def test_chip_samples_the_right_place():
    # A frame whose pixel values encode their own coordinates: the chip's centre pixel
    # must come from where the geometry says the chip centre is.
    height, width = 400, 600
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack([xs % 256, ys % 256, (xs // 256) * 64 + (ys // 256)], axis=-1).astype(np.uint8)
    geometry = align.ChipGeometry(center_x=250.5, center_y=180.5, scale=1.0, angle=0.0, size=64)
    (chip,) = align.extract_chips(frame, [geometry])
    # Pixel 31.5 is the chip centre: pixels 31 and 32 straddle frame x = 250.5.
    assert chip[31, 31, 0] == 250 and chip[32, 32, 0] == 251
    assert chip[31, 31, 1] == 180 and chip[32, 32, 1] == 181


def test_chips_outside_the_frame_are_black_not_an_error():
    frame = np.full((100, 100, 3), 200, dtype=np.uint8)
    geometry = align.ChipGeometry(center_x=-500, center_y=-500, scale=1.0, angle=0.0, size=32)
    (chip,) = align.extract_chips(frame, [geometry])
    assert chip.shape == (32, 32, 3) and chip.max() == 0


def test_pyramid_levels_follow_dlib_halving_rule():
    def levels(face_px: float) -> int:
        return align.pyramid_levels(align.ChipGeometry(0, 0, face_px / 64, 0, 64))

    assert levels(64) == 0
    assert levels(128) == 0  # halving 128 gives 64 pixels: not more than the chip
    assert levels(129) == 1
    assert levels(300) == 2


def test_blazeface_template_sits_between_dlib_points():
    eyes = align.BLAZEFACE_POINTS[:2]
    five = align.DLIB_FIVE_POINTS
    # Each eye centre lies between that eye's two corners; the nose tip above the nose base.
    assert five[2, 0] < eyes[0, 0] < five[3, 0]
    assert five[1, 0] < eyes[1, 0] < five[0, 0]
    assert align.BLAZEFACE_POINTS[2, 1] < five[4, 1] < align.BLAZEFACE_POINTS[3, 1]
