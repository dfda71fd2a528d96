"""The `yunet` detector family on real photos: where it finds faces, in frame pixels, at any
frame size, in int8 as in float, and the keypoints the rest of the pipeline needs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.vision.detectors import make_detector
from edge_agent.vision.detectors.yunet import YuNetDetector, blazeface_box, input_size, yunet_box
from edge_agent.vision.values import (
    Box,
    Detection,
    VisionSettings,
    YuNetSettings,
    detector_settings,
)
from tests.support.images import place
from tests.vision.test_blazeface import ASTRONAUT_FACE, ASTRONAUT_LEFT_EYE, ASTRONAUT_RIGHT_EYE


@pytest.fixture(scope="module", params=["yunet_s", "yunet_n", "yunet_s_float32", "yunet_n_float32"])
def detector(request, models_dir) -> YuNetDetector:
    return YuNetDetector(models_dir, detector_settings(request.param))


def only(detections: list[Detection]) -> Detection:
    assert len(detections) == 1, detections
    return detections[0]


def test_finds_the_astronaut_face_where_it_is(detector, astronaut):
    found = only(detector.detect(astronaut))
    assert found.score > 0.7
    # The box has BlazeFace's shape, whatever the detector: the same hand-measured face.
    assert found.box.iou(ASTRONAUT_FACE) > 0.6
    marks = found.landmarks
    assert abs(marks.right_eye.x - ASTRONAUT_RIGHT_EYE[0]) < 8
    assert abs(marks.right_eye.y - ASTRONAUT_RIGHT_EYE[1]) < 8
    assert abs(marks.left_eye.x - ASTRONAUT_LEFT_EYE[0]) < 8
    assert abs(marks.left_eye.y - ASTRONAUT_LEFT_EYE[1]) < 8
    assert marks.right_eye.y < marks.nose_tip.y < marks.mouth.y
    # YuNet has no ear keypoints; the pose falls back to the eyes.
    assert marks.right_ear is None and marks.left_ear is None
    assert abs(marks.pose().yaw) < 20


@pytest.mark.parametrize(
    ("size", "at", "scale"),
    [((1280, 720), (900, 300), 0.5), ((640, 480), (100, 60), 0.7), ((480, 640), (50, 200), 0.6)],
)
def test_frame_pixels_at_any_frame_size(detector, astronaut, size, at, scale):
    frame = place(astronaut, size, at=at, scale=scale)
    found = only(detector.detect(frame))
    x0, y0, x1, y1 = ASTRONAUT_FACE
    expected = Box(at[0] + scale * x0, at[1] + scale * y0, at[0] + scale * x1, at[1] + scale * y1)
    assert found.box.iou(expected) > 0.6


def test_a_small_distant_face_in_an_hd_frame(models_dir, astronaut):
    # 30 px wide in a 1280x720 frame: about 5 m from a 70 degree camera. BlazeFace never finds
    # a face under about 7.5 % of the frame width (docs/deployment.md); YuNet is made for them.
    frame = place(astronaut, (1280, 720), at=(600, 400), scale=30 / ASTRONAUT_FACE.width)
    found = only(make_detector(VisionSettings(models_dir, YuNetSettings())).detect(frame))
    assert 20 < found.box.width < 45


def test_int8_agrees_with_float(models_dir, astronaut, grace_hopper):
    for model in ("yunet_s", "yunet_n"):
        int8 = YuNetDetector(models_dir, detector_settings(model))
        float32 = YuNetDetector(models_dir, detector_settings(f"{model}_float32"))
        for image in (astronaut, grace_hopper):
            a, b = only(int8.detect(image)), only(float32.detect(image))
            assert a.box.iou(b.box) > 0.85
            assert abs(a.score - b.score) < 0.1
            pairs = zip(a.landmarks[:4], b.landmarks[:4], strict=True)
            gaps = [np.hypot(p.x - q.x, p.y - q.y) for p, q in pairs]
            assert max(gaps) < 0.06 * b.box.width


def test_finds_two_faces_and_changes_frame_size_between_calls(detector, astronaut, grace_hopper):
    frame = np.full((600, 1100, 3), 114, dtype=np.uint8)
    frame[44:556, 20:532] = astronaut
    frame[0:600, 580:1092] = grace_hopper
    assert len(detector.detect(frame)) == 2
    # The model's input follows the frame: a portrait frame next, then the first again.
    assert len(detector.detect(place(astronaut, (400, 700), at=(0, 100), scale=0.75))) == 1
    assert len(detector.detect(frame)) == 2


def test_scenes_without_people_give_no_face(detector, non_faces):
    # Not the coffee cup nor the cat: YuNet sees a face in a close-up cup (0.62, yunet_s) and
    # in a cat's (up to 0.57), which BlazeFace does not; models/MODELS.md lists them.
    for name in ("rocket", "grass", "noise", "flat_grey"):
        assert detector.detect(non_faces[name]) == [], name


@pytest.mark.parametrize(
    ("frame", "pixels", "expected"),
    [
        ((1280, 720), 640 * 360, (0.5, 640, 360, 640, 384)),
        ((640, 480), 640 * 360, (0.866, 554, 416, 576, 416)),
        ((400, 300), 640 * 360, (1.386, 554, 416, 576, 416)),
        ((1920, 1080), 640 * 360, (0.333, 640, 360, 640, 384)),
    ],
)
def test_input_size_keeps_the_pixel_budget_and_the_frame_shape(frame, pixels, expected):
    scale, scaled_w, scaled_h, input_w, input_h = input_size(*frame, pixels)
    assert round(scale, 3) == expected[0]
    assert (scaled_w, scaled_h, input_w, input_h) == expected[1:]
    assert input_w % 32 == 0 and input_h % 32 == 0


def test_settings_refuse_a_tiny_budget():
    with pytest.raises(ValueError, match="input_pixels"):
        YuNetSettings(input_pixels=100)


def test_the_blazeface_shaped_box_can_be_undone():
    raw = np.array([100.0, 50.0, 160.0, 130.0])
    assert yunet_box(blazeface_box(raw)) == pytest.approx(tuple(raw))
    reshaped = blazeface_box(raw)
    # BlazeFace's box is wider and shorter than YuNet's, its centre lower.
    assert reshaped.x1 - reshaped.x0 > 60 and reshaped.y1 - reshaped.y0 < 80
    assert (reshaped.y0 + reshaped.y1) / 2 > 90
