from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.segments import DEFAULT_BRACKETS, Gender
from edge_agent.vision.analyzer import FaceAnalyzer, VisionPipeline
from edge_agent.vision.attributes import AgeGenderEstimator
from edge_agent.vision.pose import estimate_pose
from edge_agent.vision.values import (
    AnalyzerSettings,
    Detection,
    Landmarks,
    Point,
    VisionSettings,
    detector_settings,
)
from tests.support.images import place


def only_face(pipeline: VisionPipeline, image: np.ndarray):
    faces = pipeline.faces(image)
    assert len(faces) == 1
    return faces[0]


def test_astronaut_is_an_adult_woman(pipeline, astronaut):
    face = only_face(pipeline, astronaut)
    assert face.gender is Gender.FEMALE
    assert face.p_female > 0.7
    assert 20 <= face.age_years <= 50
    assert face.age_bracket == DEFAULT_BRACKETS.of(face.age_years)
    assert face.quality.frontal > 0.7
    assert face.unknown_reasons == ()


def test_cameraman_is_a_man(pipeline, cameraman):
    face = only_face(pipeline, cameraman)
    assert face.gender is Gender.MALE
    assert face.age_years is not None and face.age_years >= 18


def test_grace_hopper_is_old(pipeline, grace_hopper):
    # She was 77 in this photo. (The model calls her male, as the float peer does: a known
    # weakness of the upstream gender model on older women in uniform.)
    face = only_face(pipeline, grace_hopper)
    assert face.age_years >= 60
    assert face.age_bracket == DEFAULT_BRACKETS.of(face.age_years)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda im: im[:, ::-1].copy(), id="mirrored"),
        pytest.param(lambda im: _rotate(im, 20, 1.0), id="rotated-20"),
        pytest.param(lambda im: _rotate(im, -15, 0.7), id="rotated-15-scaled-0.7"),
        pytest.param(lambda im: place(im, (900, 700), (250, 120), 0.8), id="moved-scaled-0.8"),
    ],
)
def test_transformed_face_gives_a_similar_estimate(pipeline, astronaut, transform):
    original = only_face(pipeline, astronaut)
    changed = only_face(pipeline, transform(astronaut))
    assert changed.gender is original.gender
    assert abs(changed.p_female - original.p_female) < 0.25
    assert abs(changed.age_years - original.age_years) < 6


def _rotate(image: np.ndarray, degrees: float, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    return cv2.warpAffine(image, matrix, (width, height), borderValue=(114, 114, 114))


def test_roll_is_measured_from_the_eye_line(models_dir, astronaut):
    # BlazeFace's eye points follow a tilted head; YuNet's barely do (a 20 degree tilt reads as
    # 2-3 degrees, in OpenCV's own YuNet too), so the eye-line reading is checked on BlazeFace.
    pipeline = VisionPipeline(
        VisionSettings(models_dir=models_dir, detector=detector_settings("full_range_int8"))
    )
    upright = only_face(pipeline, astronaut).quality.roll_deg
    # OpenCV's positive angle turns the picture anticlockwise, lifting the right-hand eye.
    tilted = only_face(pipeline, _rotate(astronaut, 20, 1.0)).quality.roll_deg
    assert tilted - upright == pytest.approx(-20, abs=5)


def test_small_face_is_unknown_not_guessed(models_dir, astronaut):
    pipeline = VisionPipeline(
        VisionSettings(models_dir=models_dir, analyzer=AnalyzerSettings(min_face_px=60))
    )
    assert only_face(pipeline, astronaut).gender is Gender.FEMALE
    small = only_face(pipeline, place(astronaut, (640, 480), (100, 50), 0.5))
    assert small.unknown_reasons == ("too_small",)
    assert small.gender is Gender.UNKNOWN
    assert small.p_female is None and small.age_years is None and small.age_bracket is None


def test_blurred_face_is_unknown(pipeline, astronaut):
    face = only_face(pipeline, cv2.GaussianBlur(astronaut, (0, 0), 6))
    assert "blurred" in face.unknown_reasons
    assert face.gender is Gender.UNKNOWN and face.age_years is None


def test_turned_face_is_unknown(pipeline, astronaut):
    detection = pipeline.detector.detect(astronaut)[0]
    marks = detection.landmarks
    # Nose and mouth swung most of the way to the right eye: a head turned ~50 degrees.
    shift = 0.8 * (marks.right_eye.x - marks.nose_tip.x)
    turned = marks._replace(
        nose_tip=Point(marks.nose_tip.x + shift, marks.nose_tip.y),
        mouth=Point(marks.mouth.x + shift / 2, marks.mouth.y),
    )
    yaw, _, _ = estimate_pose(turned)
    assert abs(yaw) > 40
    face = pipeline.analyzer.analyze(astronaut, Detection(detection.box, detection.score, turned))
    assert "turned_away" in face.unknown_reasons
    assert face.gender is Gender.UNKNOWN


def test_frontal_pose_reads_near_zero():
    marks = Landmarks(
        right_eye=Point(40, 50), left_eye=Point(80, 50), nose_tip=Point(60, 72),
        mouth=Point(60, 90), right_ear=Point(15, 60), left_ear=Point(105, 60),
    )  # fmt: skip
    yaw, pitch, roll = estimate_pose(marks)
    assert abs(yaw) < 1 and abs(roll) < 1 and abs(pitch) < 15


def test_int8_agrees_with_float_on_real_chips(models_dir, astronaut, grace_hopper, cameraman):
    pipeline = VisionPipeline(VisionSettings(models_dir=models_dir))
    analyzer: FaceAnalyzer = pipeline.analyzer
    reference = AgeGenderEstimator(models_dir, precision="float32")
    images = [astronaut, grace_hopper, cameraman]
    images += [image[:, ::-1].copy() for image in images]
    images += [_rotate(image, 12, 0.9) for image in images[:3]]
    differences = []
    for image in images:
        detection = pipeline.detector.detect(image)[0]
        chips = analyzer.chips(image, detection)
        quantized = analyzer.estimator.estimate(*chips)
        exact = reference.estimate(*chips)
        assert (quantized.p_female > 0.5) == (exact.p_female > 0.5)
        differences.append(abs(quantized.age_years - exact.age_years))
    assert np.mean(differences) < 1.5
    assert max(differences) < 4


def test_frontal_nose_height_is_read_off_dlibs_mean_face():
    from edge_agent.vision import align, pose

    points = align.BLAZEFACE_POINTS
    eyes = points[:2, 1].mean()
    assert float((points[2, 1] - eyes) / (points[3, 1] - eyes)) == pose.FRONTAL_NOSE_HEIGHT
