"""Head pose from keypoints, with the ears (BlazeFace) and without them (YuNet)."""

from __future__ import annotations

import math

import pytest

from edge_agent.vision.pose import NOSE_TO_EYE_RATIO, estimate_pose
from edge_agent.vision.values import Landmarks, Point

FRONTAL = Landmarks(
    right_eye=Point(40, 50), left_eye=Point(80, 50), nose_tip=Point(60, 72),
    mouth=Point(60, 90), right_ear=Point(15, 60), left_ear=Point(105, 60),
)  # fmt: skip


def without_ears(marks: Landmarks) -> Landmarks:
    return marks._replace(right_ear=None, left_ear=None)


def test_frontal_reads_near_zero_with_and_without_ears():
    for marks in (FRONTAL, without_ears(FRONTAL)):
        yaw, pitch, roll = estimate_pose(marks)
        assert abs(yaw) < 1 and abs(roll) < 1 and abs(pitch) < 15


@pytest.mark.parametrize("shift", [-12.0, -6.0, 6.0, 12.0])
def test_both_yaws_turn_the_same_way(shift):
    turned = FRONTAL._replace(nose_tip=Point(60 + shift, 72), mouth=Point(60 + shift / 2, 90))
    with_ears = estimate_pose(turned).yaw
    eyes_only = estimate_pose(without_ears(turned)).yaw
    assert math.copysign(1, with_ears) == math.copysign(1, eyes_only)
    # The eye-based reading uses the measured ratio: the nose's offset between the eyes.
    asymmetry = (20 + shift - (20 - shift)) / 40
    assert eyes_only == pytest.approx(math.degrees(math.atan(asymmetry * NOSE_TO_EYE_RATIO)))


def test_landmarks_pose_is_estimate_pose():
    assert FRONTAL.pose() == estimate_pose(FRONTAL)
