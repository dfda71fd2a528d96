"""Detection -> Face: align, judge quality, estimate age and gender or say "unknown"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision import align
from edge_agent.vision.attributes import (
    AGE_CHIP,
    DEFAULT_BRACKET_EDGES,
    GENDER_CHIP,
    AgeGenderEstimator,
    AttributeEstimate,
    Precision,
    age_bracket,
    gender_of,
)
from edge_agent.vision.detector import DetectorVariant, FaceDetector
from edge_agent.vision.runtime import Delegate
from edge_agent.vision.values import Detection, Face, FaceQuality, Gender, Landmarks

# Ratio of nose protrusion to half the distance between the ears on an average head: turns
# the nose's sideways offset between the ear keypoints into an approximate yaw angle.
_NOSE_TO_EAR_RATIO = 4 / 3
# Where the nose tip sits between the eye line (0) and the mouth (1) on a frontal face,
# on dlib's mean face shape.
_FRONTAL_NOSE_HEIGHT = float(
    (align.BLAZEFACE_POINTS[2, 1] - align.BLAZEFACE_POINTS[:2, 1].mean())
    / (align.BLAZEFACE_POINTS[3, 1] - align.BLAZEFACE_POINTS[:2, 1].mean())
)


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    """When a face is good enough to estimate. Outside these, the estimate is unknown."""

    # Jaw-to-jaw face width in frame pixels; below it the 64 px age chip is upsampled > 2.6x.
    min_face_px: float = 24.0
    max_yaw_deg: float = 40.0
    max_pitch_deg: float = 35.0
    min_sharpness: float = 15.0  # variance of the Laplacian on the 64 px grey chip
    gender_margin: float = 0.15  # p_female within 0.5 +- margin is unknown
    max_age_spread_years: float = 16.0
    bracket_edges: tuple[int, ...] = DEFAULT_BRACKET_EDGES


def estimate_pose(landmarks: Landmarks) -> tuple[float, float, float]:
    """Approximate (yaw, pitch, roll) in degrees from BlazeFace keypoints."""
    right_eye, left_eye = np.array(landmarks.right_eye), np.array(landmarks.left_eye)
    nose, mouth = np.array(landmarks.nose_tip), np.array(landmarks.mouth)
    eye_vector = left_eye - right_eye
    roll = math.degrees(math.atan2(eye_vector[1], eye_vector[0]))
    # Work in the face's own upright frame so roll does not read as yaw or pitch.
    cos, sin = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    upright = np.array([[cos, -sin], [sin, cos]])

    def level(point: tuple[float, float] | np.ndarray) -> np.ndarray:
        return upright @ np.asarray(point, dtype=float)

    to_right = abs(level(nose)[0] - level(landmarks.right_ear)[0])
    to_left = abs(level(landmarks.left_ear)[0] - level(nose)[0])
    asymmetry = (to_right - to_left) / max(to_right + to_left, 1e-6)
    yaw = math.degrees(math.atan(asymmetry * _NOSE_TO_EAR_RATIO))
    eye_y = (level(right_eye)[1] + level(left_eye)[1]) / 2
    span = level(mouth)[1] - eye_y
    nose_height = (level(nose)[1] - eye_y) / span if abs(span) > 1e-6 else _FRONTAL_NOSE_HEIGHT
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, (nose_height - _FRONTAL_NOSE_HEIGHT) * 2))))
    return yaw, pitch, roll


@dataclass(frozen=True, slots=True)
class Assessment:
    age_chip: np.ndarray
    gender_chip: np.ndarray
    quality: FaceQuality
    reasons: tuple[str, ...]  # empty when the face is good enough to estimate


def _chip_geometries(detection: Detection) -> list[align.ChipGeometry]:
    points = align.blazeface_points(detection.landmarks)
    return [
        align.chip_geometry(points, align.BLAZEFACE_POINTS, AGE_CHIP),
        align.chip_geometry(points, align.BLAZEFACE_POINTS, GENDER_CHIP),
    ]


class FaceAnalyzer:
    """Turns detections into faces with demographic estimates (or honest unknowns)."""

    def __init__(
        self,
        estimator: AgeGenderEstimator,
        settings: AnalyzerSettings | None = None,
    ) -> None:
        self.estimator = estimator
        self.settings = settings or AnalyzerSettings()

    def chips(self, image: np.ndarray, detection: Detection) -> tuple[np.ndarray, np.ndarray]:
        """The aligned (age 64 px, gender 32 px) RGB chips of one detection."""
        age_chip, gender_chip = align.extract_chips(image, _chip_geometries(detection))
        return age_chip, gender_chip

    def assess(self, image: np.ndarray, detection: Detection) -> Assessment:
        """Chips and quality of a detection, and why it cannot be estimated (if it cannot);
        no model runs here."""
        settings = self.settings
        geometries = _chip_geometries(detection)
        age_chip, gender_chip = align.extract_chips(image, geometries)
        yaw, pitch, roll = estimate_pose(detection.landmarks)
        grey = cv2.cvtColor(age_chip, cv2.COLOR_RGB2GRAY)
        quality = FaceQuality(
            width_px=geometries[0].scale * AGE_CHIP / (1 + 2 * align.CHIP_PADDING),
            yaw_deg=yaw,
            pitch_deg=pitch,
            roll_deg=roll,
            sharpness=float(cv2.Laplacian(grey, cv2.CV_32F).var()),
            detection_score=detection.score,
        )
        reasons = []
        if quality.width_px < settings.min_face_px:
            reasons.append("too_small")
        if abs(yaw) > settings.max_yaw_deg or abs(pitch) > settings.max_pitch_deg:
            reasons.append("turned_away")
        if quality.sharpness < settings.min_sharpness:
            reasons.append("blurred")
        return Assessment(age_chip, gender_chip, quality, tuple(reasons))

    def judge(
        self, detection: Detection, assessment: Assessment, estimate: AttributeEstimate | None
    ) -> Face:
        """The face as reported: unknown when the assessment failed, else the estimate with
        its own uncertainty gates applied."""
        quality, reasons = assessment.quality, list(assessment.reasons)
        if reasons or estimate is None:
            return Face(detection, quality, None, Gender.UNKNOWN, None, None, None, tuple(reasons))
        settings = self.settings
        gender = gender_of(estimate.p_female, settings.gender_margin)
        if gender is Gender.UNKNOWN:
            reasons.append("gender_uncertain")
        age: float | None = estimate.age_years
        bracket: str | None = age_bracket(estimate.age_years, settings.bracket_edges)
        if estimate.age_spread_years > settings.max_age_spread_years:
            reasons.append("age_uncertain")
            age, bracket = None, None
        return Face(
            detection=detection,
            quality=quality,
            p_female=estimate.p_female,
            gender=gender,
            age_years=age,
            age_spread_years=estimate.age_spread_years,
            age_bracket=bracket,
            unknown_reasons=tuple(reasons),
        )

    def analyze(self, image: np.ndarray, detection: Detection) -> Face:
        assessment = self.assess(image, detection)
        estimate = None
        if not assessment.reasons:
            estimate = self.estimator.estimate(assessment.age_chip, assessment.gender_chip)
        return self.judge(detection, assessment, estimate)


@dataclass(frozen=True, slots=True)
class VisionSettings:
    models_dir: Path
    detector: DetectorVariant = "full_range_int8"
    min_detection_score: float = 0.5
    precision: Precision = "int8"
    num_threads: int = 1
    delegate: Delegate = "cpu"
    analyzer: AnalyzerSettings = AnalyzerSettings()


class VisionPipeline:
    """Detector + analyzer, built once; the one-call entry point for commands and tests."""

    def __init__(self, settings: VisionSettings) -> None:
        self.settings = settings
        self.detector = FaceDetector(
            settings.models_dir,
            settings.detector,
            min_score=settings.min_detection_score,
            num_threads=settings.num_threads,
            delegate=settings.delegate,
        )
        self.analyzer = FaceAnalyzer(
            AgeGenderEstimator(
                settings.models_dir,
                precision=settings.precision,
                num_threads=settings.num_threads,
                delegate=settings.delegate,
            ),
            settings.analyzer,
        )

    def faces(self, image: np.ndarray) -> list[Face]:
        return [self.analyzer.analyze(image, d) for d in self.detector.detect(image)]
