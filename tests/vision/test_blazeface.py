from __future__ import annotations

import numpy as np
import pytest

from edge_agent.vision.detectors.blazeface import (
    ANCHOR_OPTIONS,
    BlazeFaceDetector,
    letterbox,
    ssd_anchor_centers,
    weighted_nms,
)
from edge_agent.vision.values import Box
from tests.support.images import place

# Where the face is in scikit-image's astronaut photo (hand-measured: forehead to chin,
# ear to ear), in its own 512x512 pixel coordinates.
ASTRONAUT_FACE = Box(180, 75, 275, 180)
ASTRONAUT_RIGHT_EYE = (205, 102)  # the subject's right eye: image left
ASTRONAUT_LEFT_EYE = (247, 105)


@pytest.fixture(scope="module", params=list(ANCHOR_OPTIONS))
def detector(request, models_dir) -> BlazeFaceDetector:
    return BlazeFaceDetector(models_dir, request.param)


def test_anchor_counts_match_mediapipe_layouts():
    assert len(ssd_anchor_centers(ANCHOR_OPTIONS["short_range"])) == 896
    assert len(ssd_anchor_centers(ANCHOR_OPTIONS["full_range"])) == 2304


def test_finds_the_astronaut_face_where_it_is(detector, astronaut):
    detections = detector.detect(astronaut)
    assert len(detections) == 1
    found = detections[0]
    assert found.score > 0.7
    assert found.box.iou(ASTRONAUT_FACE) > 0.6
    right_eye, left_eye = found.landmarks.right_eye, found.landmarks.left_eye
    assert abs(right_eye.x - ASTRONAUT_RIGHT_EYE[0]) < 8
    assert abs(right_eye.y - ASTRONAUT_RIGHT_EYE[1]) < 8
    assert abs(left_eye.x - ASTRONAUT_LEFT_EYE[0]) < 8
    assert abs(left_eye.y - ASTRONAUT_LEFT_EYE[1]) < 8
    assert found.landmarks.nose_tip.y > right_eye.y
    assert found.landmarks.mouth.y > found.landmarks.nose_tip.y


def test_frame_pixels_survive_letterboxing_of_any_frame_shape(detector, astronaut):
    # The same face in a wider frame, moved and shrunk: the box must follow.
    frame = place(astronaut, (660, 520), at=(170, 40), scale=0.9)
    detections = detector.detect(frame)
    assert len(detections) == 1
    x0, y0, x1, y1 = ASTRONAUT_FACE
    expected = Box(170 + 0.9 * x0, 40 + 0.9 * y0, 170 + 0.9 * x1, 40 + 0.9 * y1)
    assert detections[0].box.iou(expected) > 0.6


def test_finds_both_faces_in_one_frame(models_dir, astronaut, grace_hopper):
    frame = np.full((480, 1000, 3), 114, dtype=np.uint8)
    frame[0:480, 0:480] = astronaut[16:496, 16:496]
    frame[0:480, 500:980] = grace_hopper[40:520, 16:496]
    detections = BlazeFaceDetector(models_dir, "full_range").detect(frame)
    assert len(detections) == 2
    assert sorted(d.box.center.x < 500 for d in detections) == [False, True]


def test_scenes_without_people_give_no_face(detector, non_faces):
    for name, image in non_faces.items():
        assert detector.detect(image) == [], name


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    corners = np.array([[10, 10, 50, 50], [12, 12, 52, 52], [100, 100, 140, 140]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[1] += 2
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    detections = weighted_nms(corners, keypoints, scores, iou_threshold=0.3)
    assert [round(d.score, 2) for d in detections] == [0.9, 0.8]
    merged = detections[0]
    # Averaged by score: 0.9 * 10 + 0.6 * 12 over 1.5.
    assert merged.box.x0 == pytest.approx((0.9 * 10 + 0.6 * 12) / 1.5)
    assert merged.landmarks.nose_tip.x == pytest.approx(0.6 * 2 / 1.5)


def test_letterbox_keeps_aspect_and_centres_the_image():
    image = np.full((100, 200, 3), 255, dtype=np.uint8)
    canvas, box = letterbox(image, 128)
    assert canvas.shape == (128, 128, 3)
    assert box.scale == pytest.approx(0.64)
    assert box.pad_x == 0 and box.pad_y == 32
    assert canvas[:32].max() == 0 and canvas[32:96].min() == 255
