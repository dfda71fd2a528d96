"""The plain values the vision stage takes and hands on. Images everywhere are RGB uint8, HxWx3.

Light on purpose (no OpenCV, no LiteRT): the configuration and the command line read the
detector, precision and delegate names and the settings from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from edge_agent.segments import DEFAULT_BRACKETS, Brackets, Gender

if TYPE_CHECKING:
    from edge_agent.vision.pose import Pose

# BlazeFace variants (one model file each, see vision/detector.py and models/MODELS.md).
DetectorVariant = Literal["short_range", "full_range", "full_range_sparse", "full_range_int8"]
# Which age and gender models run.
Precision = Literal["int8", "float32"]
# Where models run: the CPU, or a Coral Edge TPU through its delegate.
Delegate = Literal["cpu", "edgetpu"]


class Point(NamedTuple):
    x: float
    y: float


class Box(NamedTuple):
    """Axis-aligned box in frame pixels; (x0, y0) top-left, (x1, y1) bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> Point:
        return Point((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def iou(self, other: Box) -> float:
        ix = min(self.x1, other.x1) - max(self.x0, other.x0)
        iy = min(self.y1, other.y1) - max(self.y0, other.y0)
        if ix <= 0 or iy <= 0:
            return 0.0
        inter = ix * iy
        return inter / (self.area + other.area - inter)


class Landmarks(NamedTuple):
    """BlazeFace's six keypoints. "right" and "left" are the subject's own sides, so the
    right eye appears on the left of an unmirrored image."""

    right_eye: Point
    left_eye: Point
    nose_tip: Point
    mouth: Point
    right_ear: Point
    left_ear: Point

    def pose(self) -> Pose:
        """How far the face is turned: approximate yaw, pitch and roll in degrees."""
        from edge_agent.vision.pose import estimate_pose

        return estimate_pose(self)


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float
    landmarks: Landmarks

    def translated(self, dx: float, dy: float) -> Detection:
        """The same detection in a frame whose origin is moved by (-dx, -dy)."""
        box = Box(self.box.x0 + dx, self.box.y0 + dy, self.box.x1 + dx, self.box.y1 + dy)
        landmarks = Landmarks(*(Point(p.x + dx, p.y + dy) for p in self.landmarks))
        return Detection(box, self.score, landmarks)


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How much an estimate from this face can be trusted."""

    width_px: float  # inter-ocular based face width, robust to loose boxes
    yaw_deg: float  # approximate, from nose and ear keypoints; 0 is facing the camera
    pitch_deg: float  # approximate, from nose position between eyes and mouth
    roll_deg: float  # in-plane tilt of the eye line (alignment removes it)
    sharpness: float  # variance of the Laplacian of the grey age chip
    detection_score: float

    @property
    def frontal(self) -> float:
        """1.0 facing the camera, 0.0 at 60 degrees of yaw or pitch or more."""
        worst = max(abs(self.yaw_deg), abs(self.pitch_deg))
        return max(0.0, 1.0 - worst / 60.0)


@dataclass(frozen=True, slots=True)
class Face:
    """A detection with its demographic estimate. Estimates are None when the face is too
    small, too turned, too blurred or the model too unsure: reported as unknown, not guessed."""

    detection: Detection
    quality: FaceQuality
    p_female: float | None
    gender: Gender
    age_years: float | None
    age_spread_years: float | None  # standard deviation of the age distribution
    age_bracket: str | None
    unknown_reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        box = self.detection.box
        return {
            "box": [round(v, 1) for v in box],
            "score": round(self.detection.score, 3),
            "landmarks": {
                name: [round(p.x, 1), round(p.y, 1)]
                for name, p in self.detection.landmarks._asdict().items()
            },
            "gender": self.gender.value,
            "p_female": None if self.p_female is None else round(self.p_female, 3),
            "age_years": None if self.age_years is None else round(self.age_years, 1),
            "age_spread_years": (
                None if self.age_spread_years is None else round(self.age_spread_years, 1)
            ),
            "age_bracket": self.age_bracket,
            "quality": {
                "width_px": round(self.quality.width_px, 1),
                "yaw_deg": round(self.quality.yaw_deg, 1),
                "pitch_deg": round(self.quality.pitch_deg, 1),
                "roll_deg": round(self.quality.roll_deg, 1),
                "frontal": round(self.quality.frontal, 2),
                "sharpness": round(self.quality.sharpness, 1),
            },
            "unknown_reasons": list(self.unknown_reasons),
        }


# --------------------------------------------------------------------------------------------
# Settings: what the configuration hands the vision stage


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
    brackets: Brackets = DEFAULT_BRACKETS


@dataclass(frozen=True, slots=True)
class VisionSettings:
    models_dir: Path
    detector: DetectorVariant = "full_range_int8"
    min_detection_score: float = 0.5
    precision: Precision = "int8"
    num_threads: int = 1
    delegate: Delegate = "cpu"
    analyzer: AnalyzerSettings = AnalyzerSettings()
