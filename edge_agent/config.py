"""Typed configuration: one YAML file validated into frozen models, with errors a user can act on.

    config = load_config(Path("config.yaml"))      # None: every default
    pipeline = VisionPipeline(config.vision_settings())
    tracker = Tracker(config.tracker_settings())

Every key is optional; the defaults run on a checkout with the bundled models and the demo
footage. Each field's `description` is its documentation: `render_default_yaml()` prints the
commented `config.yaml` from it and `Config.json_schema()` the JSON Schema.

A bad file raises one `ConfigError` listing every problem, one a line, as
`FILE:LINE: key.path: reason` (YAML syntax errors as `FILE:LINE:COLUMN: reason`).

Environment overrides, applied on top of the file before validation (for secrets and for
one-off changes without editing the file): `EDGE_AGENT__SECTION__KEY=value`, one double
underscore between the parts of the key path, any case, e.g.
`EDGE_AGENT__VISION__THREADS=4` or `EDGE_AGENT__VISION__QUALITY__MAX_YAW_DEG=30`. A value for a
text or path key is taken verbatim (an empty value means null where null is allowed); any other
value is read as YAML (`4`, `0.5`, `true`, `null`, `[13, 20, 35, 55]`). A problem with an
override names the variable instead of a file line.
"""

from __future__ import annotations

import difflib
import itertools
import os
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from edge_agent.audience.fusion import DemographicsFusion
    from edge_agent.audience.metrics import AudienceSettings
    from edge_agent.audience.tracker import TrackerSettings
    from edge_agent.vision.analyzer import VisionSettings

__all__ = [
    "ENV_PREFIX",
    "AudienceConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DebugConfig",
    "LoggingConfig",
    "QualityConfig",
    "SourceConfig",
    "TrackingConfig",
    "VisionConfig",
    "load_config",
    "render_default_yaml",
]

ENV_PREFIX = "EDGE_AGENT__"
_SEP = "__"

# The same values as edge_agent.vision's own Literals (a test keeps them equal); repeated here
# so that reading a config does not import OpenCV and LiteRT.
DetectorName = Literal["short_range", "full_range", "full_range_sparse", "full_range_int8"]
PrecisionName = Literal["int8", "float32"]
DelegateName = Literal["cpu", "edgetpu"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration, located as precisely as it can be."""

    message: str
    file: str | None = None  # the YAML file, or None for an environment override / defaults
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based; YAML syntax errors only
    key_path: str = ""  # "vision.quality.max_yaw_deg"; "" for the whole file
    env_var: str | None = None  # the override that caused it

    @property
    def location(self) -> str:
        if self.env_var is not None:
            return f"environment variable {self.env_var}"
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{self.location}:{key} {self.message}"


class ConfigError(ValueError):
    """The configuration is unusable; `problems` lists every reason, `str()` one per line."""

    def __init__(self, problems: list[ConfigProblem] | tuple[ConfigProblem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --------------------------------------------------------------------------------------------
# Models


def _field(default: Any, title: str, description: str, **constraints: Any) -> Any:
    return Field(default, title=title, description=description, **constraints)


def _section(model: type[BaseModel], title: str, description: str) -> Any:
    return Field(default_factory=model, title=title, description=description)


class ConfigModel(BaseModel):
    """Base of every section: frozen, unknown keys are errors, an empty section means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # `vision:` with nothing under it reads as null in YAML: take it as "all defaults".
        return {} if data is None else data


class SourceConfig(ConfigModel):
    spec: str | int = _field(
        "samples/demo.mp4",
        "Source",
        "Where frames come from: `picamera` or `picamera:N` (Pi camera N), a device index or"
        " `/dev/videoN` (USB camera), an rtsp:// or http(s):// URL (IP camera), a video file, or"
        " an image folder or glob (`frames/*.jpg`). Relative paths are relative to the working"
        " directory.",
    )
    width: int | None = _field(
        None,
        "Width",
        "Frame width in pixels to ask a camera for (it may pick its nearest mode). null: the"
        " camera's default (1280 for the Pi camera). Ignored for files and folders.",
        gt=0,
    )
    height: int | None = _field(
        None,
        "Height",
        "Frame height in pixels to ask a camera for. null: the camera's default (720 for the Pi"
        " camera). Ignored for files and folders.",
        gt=0,
    )
    fps: float | None = _field(
        None,
        "Frame rate",
        "Frames per second to ask a camera for; for a video file the rate `realtime` plays it"
        " at, for an image folder the rate it is played at. null: the source's own rate.",
        gt=0,
    )
    loop: bool = _field(
        True,
        "Loop",
        "Start a video file or image folder again at its end instead of stopping. Ignored for"
        " cameras and streams.",
    )
    realtime: bool = _field(
        True,
        "Real time",
        "Play a video file at its own frame rate, as a camera would deliver it; false reads it as"
        " fast as the pipeline goes. Ignored for cameras, streams and image folders.",
    )
    stall_timeout_s: float = _field(
        5.0,
        "Stall timeout",
        "Seconds without a new frame after which the source counts as stalled and is reopened.",
        gt=0,
    )
    reconnect_backoff_max_s: float = _field(
        5.0,
        "Longest reconnect wait",
        "Upper bound in seconds of the reconnect back-off, which starts at 0.5 s and doubles"
        " after each failed attempt; a camera that comes back is picked up within about this"
        " long.",
        ge=0.5,
    )

    @field_validator("spec", mode="before")
    @classmethod
    def _check_spec(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(
                "must be text (picamera, /dev/video0, a URL, a file or a folder) or a device index"
            )
        if isinstance(value, int) and value < 0:
            raise ValueError("a device index is 0 or more")
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    def open_options(self) -> dict[str, Any]:
        """Keyword options for `edge_agent.sources.open_source(spec, **options)`.

        Only those the kind of source named by `spec` takes: a camera gets no `loop`, a file
        no `width`.
        """
        from edge_agent.sources.images import IMAGE_SUFFIXES, is_glob
        from edge_agent.sources.opencv import classify_target

        sizes = {"width": self.width, "height": self.height}
        fps = {} if self.fps is None else {"fps": self.fps}
        if isinstance(self.spec, str):
            name, sep, number = self.spec.partition(":")
            if name.lower() == "picamera" and (not sep or number.isdigit()):
                return {k: v for k, v in sizes.items() if v is not None} | fps
        kind = classify_target(self.spec)
        if kind != "file":
            return sizes | fps
        path = Path(str(self.spec))
        if path.is_dir() or is_glob(str(self.spec)) or path.suffix.lower() in IMAGE_SUFFIXES:
            return {"loop": self.loop} | fps
        return {"loop": self.loop, "realtime": self.realtime} | fps

    def reader_options(self) -> dict[str, Any]:
        """Keyword options for `edge_agent.sources.LatestFrameReader(factory, **options)`."""
        return {"stall_timeout": self.stall_timeout_s, "backoff_max": self.reconnect_backoff_max_s}


class QualityConfig(ConfigModel):
    min_face_px: float = _field(
        24.0,
        "Smallest face",
        "Faces narrower than this many pixels in the frame (face width from the eye and ear"
        " keypoints) are too small to estimate age and gender; they are still detected, tracked"
        " and counted.",
        gt=0,
    )
    max_yaw_deg: float = _field(
        40.0,
        "Largest yaw",
        "Faces turned sideways further than this many degrees get no estimate.",
        gt=0,
        le=90,
    )
    max_pitch_deg: float = _field(
        35.0,
        "Largest pitch",
        "Faces tilted up or down further than this many degrees get no estimate.",
        gt=0,
        le=90,
    )
    min_sharpness: float = _field(
        15.0,
        "Least sharpness",
        "Blurrier faces get no estimate: the variance of the Laplacian of the 64 px grey face"
        " crop. 0 accepts any blur.",
        ge=0,
    )
    gender_margin: float = _field(
        0.15,
        "Gender margin",
        "A face is called female or male only when the model's probability is at least this far"
        " from 0.5; closer, the gender is unknown.",
        ge=0,
        le=0.5,
    )
    max_age_spread_years: float = _field(
        16.0,
        "Largest age spread",
        "An age estimate whose spread (standard deviation, years) is larger than this is"
        " reported as unknown.",
        gt=0,
    )


class VisionConfig(ConfigModel):
    models_dir: Path | None = _field(
        None,
        "Models folder",
        "Folder with the .tflite models and their manifest. null: $EDGE_AGENT_MODELS if set,"
        " else the bundled `models/` folder.",
    )
    detector: DetectorName = _field(
        "full_range_int8",
        "Face detector",
        "BlazeFace variant: short_range for faces within about 2 m, full_range within about 5 m;"
        " full_range_int8 is full_range quantized, about 1.4x faster with the same recall;"
        " full_range_sparse is MediaPipe's sparse full_range.",
    )
    min_detection_score: float = _field(
        0.5,
        "Least detection score",
        "Detector confidence a face needs to count; lower finds more distant faces and more"
        " false ones.",
        gt=0,
        lt=1,
    )
    precision: PrecisionName = _field(
        "int8",
        "Age/gender precision",
        "Age and gender models to run: int8 (quantized, faster) or float32.",
    )
    threads: int = _field(
        1,
        "Threads",
        "CPU threads per model interpreter; 1 leaves the other cores to the rest of the pipeline.",
        ge=1,
        le=64,
    )
    delegate: DelegateName = _field(
        "cpu",
        "Delegate",
        "Where models run: cpu, or edgetpu for a Coral Edge TPU (needs libedgetpu.so.1 and the"
        " name_edgetpu.tflite twin of each model in models_dir).",
    )
    quality: QualityConfig = _section(
        QualityConfig,
        "Face quality",
        "When a face is good enough to estimate age and gender; outside these, the estimate is"
        " unknown.",
    )
    age_brackets: tuple[int, ...] = _field(
        (13, 20, 35, 55),
        "Age brackets",
        "Lower edges of the age brackets after the first, in years, increasing: [13, 20, 35,"
        " 55] gives 0-12, 13-19, 20-34, 35-54 and 55+.",
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


class TrackingConfig(ConfigModel):
    confirm_hits: int = _field(
        3,
        "Detections to confirm",
        "Detections a new track needs before it counts as a person (filters one-frame false"
        " detections).",
        ge=1,
    )
    confirm_within_s: float = _field(
        1.0,
        "Confirmation window",
        "Seconds within which those detections must come, or the track is dropped.",
        gt=0,
    )
    confirm_min_score: float = _field(
        0.6,
        "Confident sighting",
        "... and at least one of those detections must score this high: real faces do, the odd"
        " textured patch that passes the detection threshold does not.",
        ge=0,
        le=1,
    )
    lost_after_s: float = _field(
        1.5,
        "Lost after",
        "Seconds a person may go unseen (turned away, occluded) before they count as gone.",
        gt=0,
    )
    min_iou: float = _field(
        0.2,
        "Least overlap",
        "Overlap (intersection over union) a detection needs with a track's predicted box to be"
        " the same face.",
        ge=0,
        le=1,
    )
    max_keypoint_shift: float = _field(
        0.6,
        "Largest keypoint shift",
        "... or else its keypoints must lie within this many face widths of the track's.",
        gt=0,
    )
    max_size_ratio: float = _field(
        1.3,
        "Largest size change",
        "A face may grow or shrink by at most this factor between two sightings of one track.",
        ge=1,
    )
    gap_after_s: float = _field(
        0.3,
        "Gap",
        "After this many seconds unseen (the person looked away, or left), a face continues the"
        " track only where the track was heading and at the same size (the next two keys).",
        gt=0,
    )
    gap_min_iou: float = _field(
        0.5,
        "Overlap after a gap",
        "Smallest overlap (IoU) with the predicted box that continues a track after a gap.",
        ge=0,
        le=1,
    )
    gap_max_size_ratio: float = _field(
        1.15,
        "Size change after a gap",
        "Largest size factor that continues a track after a gap; someone else stepping into the"
        " same spot usually differs by more.",
        ge=1,
    )


class AudienceConfig(ConfigModel):
    window_s: float = _field(
        60.0,
        "Report window",
        "Length in seconds of one audience report; a person is counted in the window in which"
        " they leave.",
        gt=0,
    )
    min_segment_size: int = _field(
        5,
        "Smallest published segment",
        "Gender x age segments with fewer people than this in a window are folded into 'other'"
        " before publishing, so no small group can be singled out (k-anonymity).",
        ge=1,
    )
    viewer_max_yaw_deg: float = _field(
        30.0,
        "Viewer yaw",
        "A face turned sideways by at most this many degrees counts as looking at the screen.",
        gt=0,
        le=90,
    )
    viewer_max_pitch_deg: float = _field(
        25.0,
        "Viewer pitch",
        "... and tilted up or down by at most this many degrees.",
        gt=0,
        le=90,
    )
    viewer_min_attention_s: float = _field(
        1.0,
        "Viewer attention",
        "Seconds a person must look without a break to count as a viewer.",
        ge=0,
    )
    fusion_samples: int = _field(
        5,
        "Samples per person",
        "Good face samples after which a person's age and gender estimate is final and their"
        " face is no longer classified.",
        ge=1,
    )


class LoggingConfig(ConfigModel):
    level: LogLevel = _field(
        "INFO", "Log level", "Least severe messages written to the log (any case)."
    )
    format: LogFormat = _field(
        "text",
        "Log format",
        "text: one readable line per message; json: one JSON object per line (for log shippers).",
    )
    stats_interval_s: float = _field(
        30.0,
        "Statistics interval",
        "Seconds between log lines with pipeline statistics (frames, skipped frames, timings).",
        gt=0,
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class DebugConfig(ConfigModel):
    save_annotated_frames_dir: Path | None = _field(
        None,
        "Annotated frames folder",
        "WARNING: PRIVACY. When set, frames with boxes and estimates drawn on them are written"
        " to this folder: these are images of people's faces stored on disk. For debugging on a"
        " bench only, never in a store. null (the default): nothing is written.",
    )


class Config(ConfigModel):
    """The whole configuration; every section optional."""

    source: SourceConfig = _section(SourceConfig, "Source", "The camera, stream or file.")
    vision: VisionConfig = _section(
        VisionConfig, "Vision", "Face detection and age/gender estimation."
    )
    tracking: TrackingConfig = _section(
        TrackingConfig, "Tracking", "Following each face from frame to frame."
    )
    audience: AudienceConfig = _section(
        AudienceConfig, "Audience", "Who counts as a viewer, and the windows counts are sent in."
    )
    logging: LoggingConfig = _section(LoggingConfig, "Logging", "What the daemon logs.")
    debug: DebugConfig = _section(
        DebugConfig, "Debug", "Debugging aids; all off by default. Never enable them in a store."
    )

    def vision_settings(self) -> VisionSettings:
        from edge_agent.vision.analyzer import AnalyzerSettings, VisionSettings
        from edge_agent.vision.models import default_models_dir

        vision, quality = self.vision, self.vision.quality
        return VisionSettings(
            models_dir=vision.models_dir or default_models_dir(),
            detector=vision.detector,
            min_detection_score=vision.min_detection_score,
            precision=vision.precision,
            num_threads=vision.threads,
            delegate=vision.delegate,
            analyzer=AnalyzerSettings(
                min_face_px=quality.min_face_px,
                max_yaw_deg=quality.max_yaw_deg,
                max_pitch_deg=quality.max_pitch_deg,
                min_sharpness=quality.min_sharpness,
                gender_margin=quality.gender_margin,
                max_age_spread_years=quality.max_age_spread_years,
                bracket_edges=vision.age_brackets,
            ),
        )

    def tracker_settings(self) -> TrackerSettings:
        from edge_agent.audience.tracker import TrackerSettings

        return TrackerSettings(**self.tracking.model_dump())

    def audience_settings(self) -> AudienceSettings:
        from edge_agent.audience.metrics import AudienceSettings

        return AudienceSettings(**self.audience.model_dump(exclude={"fusion_samples"}))

    def fusion(self) -> DemographicsFusion:
        """A fresh per-person fusion stage as configured."""
        from edge_agent.audience.fusion import DemographicsFusion

        return DemographicsFusion(
            samples_needed=self.audience.fusion_samples,
            gender_margin=self.vision.quality.gender_margin,
            bracket_edges=self.vision.age_brackets,
        )

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of the config file (titles, descriptions, defaults, ranges)."""
        return cls.model_json_schema()


# --------------------------------------------------------------------------------------------
# Loading

_KeyPath = tuple[Any, ...]


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment (`os.environ` unless given) and validate.

    `path=None` means no file: every default, plus environment overrides. An empty file is the
    same as no file. Raises `ConfigError` listing every problem.
    """
    file = None if path is None else os.fspath(path)
    data: Any = {}
    lines: dict[_KeyPath, int] = {}
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                [ConfigProblem(f"cannot read the config file: {error}", file)]
            ) from None
        data, lines = _parse_yaml(text, file)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                [
                    ConfigProblem(
                        "the top level must be a mapping of sections"
                        f" ({', '.join(Config.model_fields)}), got {_kind(data)}",
                        file,
                        line=lines.get((), 1),
                    )
                ]
            )
    data, from_env, problems = _apply_environment(data, os.environ if environ is None else environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems += _problems(error, data, file, lines, from_env)
    if problems:
        raise ConfigError(_sorted(problems))
    return config


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[_KeyPath, int]]:
    """The document as plain Python values, and the 1-based line of every key and list item."""
    loader = yaml.SafeLoader(text)
    lines: dict[_KeyPath, int] = {}
    problems: list[ConfigProblem] = []

    def located(message: str, mark: yaml.Mark | None, path: _KeyPath = ()) -> ConfigProblem:
        line = None if mark is None else mark.line + 1
        column = None if mark is None else mark.column + 1
        return ConfigProblem(message, file, line, column, _dotted(path))

    def build(node: yaml.Node, path: _KeyPath) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):
                    problems.append(located("a key must be a plain value", key_node.start_mark))
                    continue
                if key in result:
                    problems.append(
                        located(
                            f"duplicate key (first on line {lines[(*path, key)]})",
                            key_node.start_mark,
                            (*path, key),
                        )
                    )
                    continue
                lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, index)) for index, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    try:
        root = loader.get_single_node()
        data = None if root is None else build(root, ())
    except yaml.MarkedYAMLError as error:
        reason = error.problem or "invalid YAML"
        if error.context:
            reason = f"{reason} ({error.context}"
            if error.context_mark is not None and error.context_mark.line != (
                error.problem_mark.line if error.problem_mark else None
            ):
                reason += f" on line {error.context_mark.line + 1}"
            reason += ")"
        raise ConfigError(
            [located(f"YAML syntax error: {reason}", error.problem_mark or error.context_mark)]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem(f"YAML error: {error}", file)]) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return data, lines


def _apply_environment(
    data: dict[Any, Any], environ: Mapping[str, str]
) -> tuple[dict[Any, Any], dict[_KeyPath, str], list[ConfigProblem]]:
    """Merge EDGE_AGENT__A__B=value overrides into a copy of the data."""
    overrides = sorted(
        (name, value) for name, value in environ.items() if name.upper().startswith(ENV_PREFIX)
    )
    if not overrides:
        return data, {}, []
    merged = _copy(data)
    from_env: dict[_KeyPath, str] = {}
    problems: list[ConfigProblem] = []
    for name, raw in overrides:
        parts = name[len(ENV_PREFIX) :].lower().split(_SEP)
        if not all(parts):
            problems.append(
                ConfigProblem(
                    f"expected {ENV_PREFIX}SECTION__KEY, with one double underscore between"
                    " the parts of the key path",
                    env_var=name,
                )
            )
            continue
        path = tuple(parts)
        blocked = _set(merged, path, _env_value(path, raw))
        if blocked is None:
            from_env[path] = name
        else:
            message = f"cannot set {_dotted(path)}: {_dotted(blocked)} is not a section"
            problems.append(ConfigProblem(message, env_var=name))
    return merged, from_env, problems


def _set(data: dict[Any, Any], path: _KeyPath, value: Any) -> _KeyPath | None:
    """Set data[a][b]... = value, making missing sections; else the path of what is in the way."""
    node = data
    for depth, part in enumerate(path[:-1], start=1):
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            return path[:depth]
        node = node[part]
    node[path[-1]] = value
    return None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _env_value(path: _KeyPath, raw: str) -> Any:
    field = _field_at(path)
    if field is not None and _takes_text(field.annotation):
        return None if raw == "" and _takes_none(field.annotation) else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw  # validation says what is wrong with it, naming the variable


def _field_at(path: _KeyPath) -> FieldInfo | None:
    model: Any = Config
    field = None
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = field.annotation
    return field


def _flat_types(annotation: Any) -> set[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_flat_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return _flat_types(typing.get_args(annotation)[0])
    return {annotation}


def _takes_text(annotation: Any) -> bool:
    return bool(_flat_types(annotation) & {str, Path})


def _takes_none(annotation: Any) -> bool:
    return type(None) in _flat_types(annotation)


def _dotted(path: _KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems(
    error: ValidationError,
    data: Any,
    file: str | None,
    lines: dict[_KeyPath, int],
    from_env: dict[_KeyPath, str],
) -> list[ConfigProblem]:
    merged: dict[_KeyPath, list[str]] = {}
    for item in error.errors(include_url=False):
        path = _data_path(data, item["loc"])
        message = _message(item, path)
        if message not in merged.setdefault(path, []):
            merged[path].append(message)
    problems = []
    for path, messages in merged.items():
        env_var = next(
            (from_env[path[:n]] for n in range(len(path), 0, -1) if path[:n] in from_env), None
        )
        line = None
        if env_var is None:
            line = next(
                (lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None
            )
        problems.append(
            ConfigProblem(
                "; ".join(messages),
                None if env_var else file,
                line,
                key_path=_dotted(path),
                env_var=env_var,
            )
        )
    return problems


def _data_path(data: Any, loc: tuple[Any, ...]) -> _KeyPath:
    """The part of a pydantic error location that names keys in the data (drops union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            break
        node = node[part]
        path.append(part)
    return tuple(path)


def _message(item: Any, path: _KeyPath) -> str:
    kind, value = item["type"], item.get("input")
    parent = _field_at(path[:-1]) if path else None
    if kind == "extra_forbidden":
        owner = Config if len(path) == 1 else (parent.annotation if parent else None)
        valid = list(owner.model_fields) if owner is not None else []
        message = f"unknown key {path[-1]!r}"
        close = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
        return f"{message}; valid keys here: {', '.join(valid)}" if valid else message
    message = item["msg"].removeprefix("Value error, ")
    if kind == "model_type" or kind == "dict_type":
        return f"must be a mapping of keys, got {_kind(value)}"
    if isinstance(value, dict | list | tuple):
        return message
    message = f"{message} (got {value!r})"
    if kind == "literal_error" and isinstance(value, str):
        field = _field_at(path)
        choices = [str(c) for c in _literal_choices(field.annotation)] if field else []
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
    return message


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    # File problems in file order, then environment ones; stable within each.
    return sorted(
        problems,
        key=lambda p: (p.env_var is not None, p.line if p.line is not None else 0, p.env_var or ""),
    )


# --------------------------------------------------------------------------------------------
# The documented default file

_HEADER = """\
# edge-agent configuration. Every key is optional: a missing key, a missing section or an empty
# file takes the default shown here. An unknown key is an error, as is a value out of range.
#
# Any key can be overridden from the environment, e.g. for secrets kept out of this file:
#   EDGE_AGENT__SECTION__KEY=value   (one double underscore between the parts of the key path)
#   EDGE_AGENT__VISION__THREADS=4    EDGE_AGENT__VISION__QUALITY__MAX_YAW_DEG=30
# Text and path values are taken verbatim; others are read as YAML (4, 0.5, true, null, [1, 2]).
#
# Generated by `python -m edge_agent.config > config.yaml` from the descriptions in
# edge_agent/config.py: edit them there, not here.
"""


def render_default_yaml() -> str:
    """The commented default config file: every key, its default, its documentation."""
    out = [_HEADER.rstrip("\n")]
    for name, field in Config.model_fields.items():
        out.append("")
        out += _comment(field, indent="")
        out.append(f"{name}:")
        out += _render_model(field.annotation, indent="  ")
    return "\n".join(out) + "\n"


def _render_model(model: type[BaseModel], indent: str) -> list[str]:
    out: list[str] = []
    defaults = model()
    for index, (name, field) in enumerate(model.model_fields.items()):
        if index:
            out.append("")
        out += _comment(field, indent)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.append(f"{indent}{name}:")
            out += _render_model(annotation, indent + "  ")
        else:
            out.append(f"{indent}{name}: {_yaml_scalar(getattr(defaults, name))}")
    return out


def _comment(field: FieldInfo, indent: str) -> list[str]:
    text = field.description or ""
    choices = _literal_choices(field.annotation)
    if choices:
        text += f" One of: {', '.join(map(str, choices))}."
    bounds = _bounds(field)
    if bounds:
        # Non-breaking spaces keep "> 0" together when wrapped.
        text += " Allowed: " + bounds.replace(" ", "\xa0") + "."
    width = 100 - len(indent) - 2
    wrapped = textwrap.wrap(text, width, break_on_hyphens=False)
    return [f"{indent}# {line}".replace("\xa0", " ") for line in wrapped]


def _bounds(field: FieldInfo) -> str:
    words = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "at least"}
    parts = []
    for constraint in field.metadata:
        for attribute, word in words.items():
            value = getattr(constraint, attribute, None)
            if value is not None:
                suffix = " value" if attribute == "min_length" else ""
                parts.append(f"{word} {value}{suffix}")
    return " and ".join(parts)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


if __name__ == "__main__":  # python -m edge_agent.config > config.yaml
    print(render_default_yaml(), end="")
