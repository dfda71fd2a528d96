"""The `vision` section: face detection and age/gender estimation, and when a face is good
enough to estimate."""

from __future__ import annotations

import itertools
from pathlib import Path

from pydantic import field_validator

from edge_agent.config.base import ConfigModel, section, setting
from edge_agent.config.detector import (
    DETECTOR_NAMES,
    DetectorConfig,
    YuNetDetectorConfig,
    expand_detector_name,
)
from edge_agent.segments import DEFAULT_BRACKETS, DEFAULT_EDGES, Brackets
from edge_agent.vision.values import (
    FULL_SCAN_EVERY,
    WHOLE_FRAME_EVERY_S,
    Delegate,
    DetectorSettings,
    Precision,
)


class QualityConfig(ConfigModel):
    min_face_px: float = setting(
        18.0,
        "Smallest face",
        "Faces narrower than this many pixels in the frame (face width from the eye and ear"
        " keypoints) are too small to estimate age and gender; they are still detected, tracked"
        " and counted.",
        gt=0,
    )
    max_yaw_deg: float = setting(
        40.0,
        "Largest yaw",
        "Faces turned sideways further than this many degrees get no estimate.",
        gt=0,
        le=90,
    )
    max_pitch_deg: float = setting(
        35.0,
        "Largest pitch",
        "Faces tilted up or down further than this many degrees get no estimate.",
        gt=0,
        le=90,
    )
    min_sharpness: float = setting(
        15.0,
        "Least sharpness",
        "Blurrier faces get no estimate: the variance of the Laplacian of the 64 px grey face"
        " crop. 0 accepts any blur.",
        ge=0,
    )
    gender_margin: float = setting(
        0.15,
        "Gender margin",
        "A face is called female or male only when the model's probability is at least this far"
        " from 0.5; closer, the gender is unknown.",
        ge=0,
        le=0.5,
    )
    max_age_spread_years: float = setting(
        16.0,
        "Largest age spread",
        "An age estimate whose spread (standard deviation, years) is larger than this is"
        " reported as unknown.",
        gt=0,
    )


class VisionConfig(ConfigModel):
    models_dir: Path | None = setting(
        None,
        "Models folder",
        "Folder with the .tflite models and their manifest. null: $EDGE_AGENT_MODELS if set,"
        " else the checkout's `models/` folder, else /opt/edge-agent/models (scripts/install.sh).",
    )
    detector: DetectorConfig = setting(
        YuNetDetectorConfig(),
        "Face detector",
        "The face detector family and its options: a mapping with `type: yunet` (keys model,"
        " precision, input_pixels) or `type: blazeface` (key variant), or a detector name as a"
        " short form (" + ", ".join(DETECTOR_NAMES) + "). What each finds, by face size,"
        " and what it costs: docs/deployment.md.",
    )
    min_detection_score: float = setting(
        0.5,
        "Least detection score",
        "Detector confidence a face needs in the one-shot commands (analyze, aim, eval);"
        " lower finds more distant faces and more false ones. The daemon's tracker has its own"
        " thresholds: tracking.confirm_min_score and tracking.low_score.",
        gt=0,
        lt=1,
    )
    full_scan_every: int = setting(
        FULL_SCAN_EVERY,
        "Full scan every",
        "The daemon makes a full scan for new faces once every this many frames (the whole"
        " frame, or with motion_scan where the picture changed) and, in between, searches only"
        " around the faces it is following; a new face is found at the next full scan. 1: a"
        " full scan on every frame. YuNet on the CPU only: BlazeFace and the Edge TPU always"
        " scan the whole frame.",
        ge=1,
        le=100,
    )
    motion_scan: bool = setting(
        True,
        "Full scans where the picture changed",
        "A full scan searches only the parts of the frame that changed since the previous one"
        " (and around the faces followed): a new face arrives by moving. Most of the picture"
        " changed (a crowd, the lights): the whole frame. Off: every full scan covers the whole"
        " frame (for a camera that moves).",
    )
    whole_frame_every_s: float = setting(
        WHOLE_FRAME_EVERY_S,
        "Whole frame at least every",
        "With motion_scan, the full scan still covers the whole frame at least this often, in"
        " seconds of video.",
        gt=0,
    )
    precision: Precision = setting(
        "int8",
        "Age/gender precision",
        "Age and gender models to run: int8 (quantized, faster) or float32.",
    )
    threads: int = setting(
        1,
        "Threads",
        "CPU threads per model interpreter; 1 leaves the other cores to the rest of the pipeline.",
        ge=1,
        le=64,
    )
    delegate: Delegate = setting(
        "cpu",
        "Delegate",
        "Where models run: cpu, or edgetpu for a Coral Edge TPU (needs libedgetpu.so.1 and the"
        " name_edgetpu.tflite twin of each model in models_dir).",
    )
    quality: QualityConfig = section(
        QualityConfig,
        "Face quality",
        "When a face is good enough to estimate age and gender; outside these, the estimate is"
        " unknown.",
    )
    age_brackets: tuple[int, ...] = setting(
        DEFAULT_EDGES,
        "Age brackets",
        "Lower edges of the age brackets after the first, in years, increasing:"
        f" {list(DEFAULT_EDGES)} gives {', '.join(DEFAULT_BRACKETS.labels[:-1])} and"
        f" {DEFAULT_BRACKETS.labels[-1]}.",
        min_length=1,
    )

    @field_validator("age_brackets")
    @classmethod
    def _check_brackets(cls, edges: tuple[int, ...]) -> tuple[int, ...]:
        if edges[0] <= 0:
            raise ValueError(f"ages must be positive, got {list(edges)}")
        if any(high <= low for low, high in itertools.pairwise(edges)):
            raise ValueError(f"ages must increase, got {list(edges)}")
        return edges

    @field_validator("detector", mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        return expand_detector_name(value)

    def detector_settings(self) -> DetectorSettings:
        return self.detector.settings(self.min_detection_score)

    @property
    def brackets(self) -> Brackets:
        return Brackets(self.age_brackets)
