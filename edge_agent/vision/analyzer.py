"""Detection -> Face: align, judge quality, estimate age and gender or say "unknown"."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.segments import Gender, gender_of
from edge_agent.vision import align
from edge_agent.vision.attributes import (
    AGE_CHIP,
    GENDER_CHIP,
    AgeGenderEstimator,
    AttributeEstimate,
)
from edge_agent.vision.detectors import make_detector
from edge_agent.vision.values import AnalyzerSettings, Detection, Face, FaceQuality, VisionSettings


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
        yaw, pitch, roll = detection.landmarks.pose()
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
        bracket: str | None = settings.brackets.of(estimate.age_years)
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


class VisionPipeline:
    """Detector + analyzer, built once; the one-call entry point for commands and tests."""

    def __init__(self, settings: VisionSettings) -> None:
        self.settings = settings
        self.detector = make_detector(settings)
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
