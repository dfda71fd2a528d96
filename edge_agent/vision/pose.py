"""Head pose from the detector's keypoints: how far a face is turned from the camera.

The analyzer gates age and gender on it (a face turned too far gets no estimate) and the
audience stage decides from it whether a person looks at the screen, each with its own limits;
both read it through `Landmarks.pose()`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from edge_agent.vision.values import Landmarks

# Ratio of nose protrusion to half the distance between the ears on an average head: turns
# the nose's sideways offset between the ear keypoints into an approximate yaw angle.
_NOSE_TO_EAR_RATIO = 4 / 3
# The same for the eyes, for detectors without ear keypoints (YuNet): the least-squares fit of
# YuNet's eye-based yaw to BlazeFace's ear-based one, on the 277 turned faces 40 px and wider
# both found in real crowd photos (scripts/detector_calibration.py on faces-real-dev), is 1.57
# (1.56 with the first conversion); the two yaws then differ by 11.5 degrees (median).
NOSE_TO_EYE_RATIO = 1.56
# Where the nose tip sits between the eye line (0) and the mouth (1) on a frontal face, on
# dlib's mean face shape: align.BLAZEFACE_POINTS gives it (a test keeps the two equal). A
# number here keeps the values from importing OpenCV through the alignment.
FRONTAL_NOSE_HEIGHT = 0.5138800297860636


class Pose(NamedTuple):
    """Approximate angles in degrees; (0, 0, 0) faces the camera upright."""

    yaw: float  # turned sideways
    pitch: float  # tilted up or down
    roll: float  # in-plane tilt of the eye line


def estimate_pose(landmarks: Landmarks) -> Pose:
    """Approximate (yaw, pitch, roll) in degrees from the eye, nose, mouth (and ear) points."""
    right_eye, left_eye = np.array(landmarks.right_eye), np.array(landmarks.left_eye)
    nose, mouth = np.array(landmarks.nose_tip), np.array(landmarks.mouth)
    eye_vector = left_eye - right_eye
    roll = math.degrees(math.atan2(eye_vector[1], eye_vector[0]))
    # Work in the face's own upright frame so roll does not read as yaw or pitch.
    cos, sin = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    upright = np.array([[cos, -sin], [sin, cos]])

    def level(point: tuple[float, float] | np.ndarray) -> np.ndarray:
        return upright @ np.asarray(point, dtype=float)

    if landmarks.right_ear is not None and landmarks.left_ear is not None:
        right, left, ratio = landmarks.right_ear, landmarks.left_ear, _NOSE_TO_EAR_RATIO
    else:
        right, left, ratio = right_eye, left_eye, NOSE_TO_EYE_RATIO
    to_right = abs(level(nose)[0] - level(right)[0])
    to_left = abs(level(left)[0] - level(nose)[0])
    asymmetry = (to_right - to_left) / max(to_right + to_left, 1e-6)
    yaw = math.degrees(math.atan(asymmetry * ratio))
    eye_y = (level(right_eye)[1] + level(left_eye)[1]) / 2
    span = level(mouth)[1] - eye_y
    nose_height = (level(nose)[1] - eye_y) / span if abs(span) > 1e-6 else FRONTAL_NOSE_HEIGHT
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, (nose_height - FRONTAL_NOSE_HEIGHT) * 2))))
    return Pose(yaw, pitch, roll)
