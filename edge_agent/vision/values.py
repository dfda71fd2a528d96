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

# BlazeFace variants (one model file each, see vision/detectors/blazeface.py, models/MODELS.md).
BlazeFaceVariant = Literal["short_range", "full_range", "full_range_sparse", "full_range_int8"]
# YuNet sizes (vision/detectors/yunet.py): n has 75 k parameters, s 55 k.
YuNetModel = Literal["yunet_n", "yunet_s"]
# Every detector by one name: the command line's --detector and the short form of
# `vision.detector` in the config. A YuNet name is int8 unless it ends in _float32.
DetectorName = Literal[
    "short_range",
    "full_range",
    "full_range_sparse",
    "full_range_int8",
    "yunet_n",
    "yunet_n_float32",
    "yunet_s",
    "yunet_s_float32",
]
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
    """The face's keypoints. "right" and "left" are the subject's own sides, so the right eye
    appears on the left of an unmirrored image. Every detector gives the eye centres, the nose
    tip and the mouth centre (what the alignment uses); BlazeFace also gives the ears (tragion
    points), YuNet does not."""

    right_eye: Point
    left_eye: Point
    nose_tip: Point
    mouth: Point
    right_ear: Point | None = None
    left_ear: Point | None = None

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
        landmarks = Landmarks(
            *(None if p is None else Point(p.x + dx, p.y + dy) for p in self.landmarks)
        )
        return Detection(box, self.score, landmarks)


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How much an estimate from this face can be trusted."""

    width_px: float  # inter-ocular based face width, robust to loose boxes
    yaw_deg: float  # approximate, from the nose between the ears (or eyes); 0 faces the camera
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
                if p is not None
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

    # Face width in frame pixels (`FaceQuality.width_px`); below 18 gender accuracy falls under
    # 95 % (models/MODELS.md, "Gender and age accuracy against face width").
    min_face_px: float = 18.0
    max_yaw_deg: float = 40.0
    max_pitch_deg: float = 35.0
    min_sharpness: float = 15.0  # variance of the Laplacian on the 64 px grey chip
    gender_margin: float = 0.15  # p_female within 0.5 +- margin is unknown
    max_age_spread_years: float = 16.0
    brackets: Brackets = DEFAULT_BRACKETS


@dataclass(frozen=True, slots=True)
class BlazeFaceSettings:
    """MediaPipe BlazeFace: the whole frame letterboxed to 192 px (full range) or 128 px."""

    type: Literal["blazeface"] = "blazeface"
    variant: BlazeFaceVariant = "full_range_int8"
    min_score: float = 0.5

    @property
    def name(self) -> DetectorName:
        return self.variant


@dataclass(frozen=True, slots=True)
class YuNetSettings:
    """libfacedetection's YuNet: the frame scaled, keeping its shape, to `input_pixels`."""

    type: Literal["yunet"] = "yunet"
    model: YuNetModel = "yunet_s"
    precision: Precision = "int8"
    # The model's cost goes with the pixels it sees; more finds smaller faces. 640 x 360: a
    # 1280x720 frame is halved, a 640x480 one shrunk to 554x416, a 400x300 photo enlarged.
    input_pixels: int = 640 * 360
    # Most of what scores 0.5 to 0.6 in crowd photos is a real face, blurred or far.
    min_score: float = 0.5

    def __post_init__(self) -> None:
        if self.input_pixels < 32 * 32:
            raise ValueError(f"input_pixels must be at least 1024, got {self.input_pixels}")

    @property
    def name(self) -> DetectorName:
        return self.model if self.precision == "int8" else f"{self.model}_float32"  # type: ignore[return-value]


# A detector family's settings; `type` says which family (vision/detectors/).
DetectorSettings = BlazeFaceSettings | YuNetSettings


def detector_settings(
    name: DetectorName, *, min_score: float | None = None, input_pixels: int | None = None
) -> DetectorSettings:
    """The settings a detector name stands for; `min_score`/`input_pixels` None: its
    defaults."""
    if name.startswith("yunet_"):
        model, _, precision = name.partition("_float")
        options: dict[str, object] = {"model": model}
        if precision:
            options["precision"] = "float32"
        if input_pixels is not None:
            options["input_pixels"] = input_pixels
        if min_score is not None:
            options["min_score"] = min_score
        return YuNetSettings(**options)  # type: ignore[arg-type]
    if name not in ("short_range", "full_range", "full_range_sparse", "full_range_int8"):
        raise ValueError(f"unknown detector {name!r}")
    if min_score is None:
        return BlazeFaceSettings(variant=name)
    return BlazeFaceSettings(variant=name, min_score=min_score)


# Between full scans the daemon searches only around its tracks (pipeline.py).
FULL_SCAN_EVERY = 5
# A full scan searches only where the picture changed (vision/motion.py), and the whole frame
# at least this often (seconds): the safety net for a face that appeared without a change the
# coarse comparison sees.
WHOLE_FRAME_EVERY_S = 2.0


@dataclass(frozen=True, slots=True)
class VisionSettings:
    models_dir: Path
    detector: DetectorSettings = YuNetSettings()
    full_scan_every: int = FULL_SCAN_EVERY
    motion_scan: bool = True
    whole_frame_every_s: float = WHOLE_FRAME_EVERY_S
    precision: Precision = "int8"
    num_threads: int = 1
    delegate: Delegate = "cpu"
    analyzer: AnalyzerSettings = AnalyzerSettings()


# The width of an adult face looking at the camera, in metres: the "face width" of
# docs/deployment.md's camera tables (face_px = focal_px * FACE_WIDTH_M / distance) and the
# ruler of scripts/face_size_sweep.py. `FaceQuality.width_px` measures a narrower span, about
# 0.7 of it (docs/deployment.md, `vision.quality.min_face_px`).
FACE_WIDTH_M = 0.16
