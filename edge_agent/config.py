"""Typed configuration: one YAML file validated into frozen models, with errors a user can act on.

    config = load_config(Path("config.yaml"))      # None: every default
    pipeline = VisionPipeline(config.vision_settings())
    tracker = Tracker(config.tracker_settings())
    telemetry = TelemetryStage(config.telemetry_settings())

Each stage gets its own settings value (from its package's `values`) and never sees this
module; only the wiring (`daemon.py`, `pipeline.py`) and the commands read a `Config`.

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

import itertools
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from edge_agent.ads.values import AdsSettings, PlayerKind
from edge_agent.audience.values import AudienceSettings, FusionSettings, TrackerSettings
from edge_agent.installed import default_models_dir
from edge_agent.segments import DEFAULT_EDGES, Brackets
from edge_agent.sources.values import SourceSettings
from edge_agent.telemetry.values import (
    ID_RULE,
    LinkSettings,
    TelemetrySettings,
    TlsSettings,
    device_id_from_hostname,
    is_topic_id,
)
from edge_agent.validated_yaml import (
    KeyPath,
    Problem,
    ProblemsError,
    annotation_at,
    dotted,
    flat_types,
    kind_of,
    literal_choices,
    parse_yaml,
    problems_from_validation,
)
from edge_agent.vision.values import (
    AnalyzerSettings,
    Delegate,
    DetectorVariant,
    Precision,
    VisionSettings,
)

__all__ = [
    "ENV_PREFIX",
    "AdsConfig",
    "AudienceConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DebugConfig",
    "HomeAssistantConfig",
    "LoggingConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "PrivacyConfig",
    "QualityConfig",
    "SourceConfig",
    "StateConfig",
    "TrackingConfig",
    "VisionConfig",
    "WebPlayerConfig",
    "load_config",
    "read_secret",
    "render_default_yaml",
]

ENV_PREFIX = "EDGE_AGENT__"
_SEP = "__"
# In `state.dir`: a copy of the last rules file that loaded, for a start with a broken one.
LAST_GOOD_RULES_FILE = "rules.last-good.yaml"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


# --------------------------------------------------------------------------------------------
# Errors


# A problem with the configuration, located as precisely as it can be (file, line, key path,
# or the environment variable that caused it).
ConfigProblem = Problem


class ConfigError(ProblemsError):
    """The configuration is unusable; `problems` lists every reason, `str()` one per line."""


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
        " else the checkout's `models/` folder, else /opt/edge-agent/models (scripts/install.sh).",
    )
    detector: DetectorVariant = _field(
        "full_range_int8",
        "Face detector",
        "BlazeFace variant. Both see the frame shrunk to 128 or 192 px, so what counts is a"
        " face's share of the frame width, measured (docs/deployment.md): full_range finds faces"
        " from about 7.5 % of it, short_range from about 12.5 %; with a 66-70 degree lens"
        " that is about 1.5 m and 1 m. full_range_int8 is full_range quantized, about 1.4x"
        " faster with the same recall; full_range_sparse is MediaPipe's sparse full_range.",
    )
    min_detection_score: float = _field(
        0.5,
        "Least detection score",
        "Detector confidence a face needs to count; lower finds more distant faces and more"
        " false ones.",
        gt=0,
        lt=1,
    )
    precision: Precision = _field(
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
    delegate: Delegate = _field(
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
        DEFAULT_EDGES,
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

    @property
    def brackets(self) -> Brackets:
        return Brackets(self.age_brackets)


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


class WebPlayerConfig(ConfigModel):
    host: str = _field(
        "127.0.0.1",
        "Address",
        "Address the kiosk page is served on. 127.0.0.1 keeps it on this device, where the"
        " kiosk browser runs; it has no authentication, so do not open it to the network.",
        min_length=1,
    )
    port: int = _field(
        8765,
        "Port",
        "TCP port of the kiosk page; 0 picks a free one (tests; the log says which).",
        ge=0,
        le=65535,
    )


class AdsConfig(ConfigModel):
    enabled: bool = _field(True, "Enabled", "Choose and show ads; false only counts the audience.")
    rules: Path = _field(
        Path("ads/rules.yaml"),
        "Rules file",
        "The ad rule table (see `edge-agent rules check` and `rules explain`). Re-read when it"
        " changes; a bad edit is reported and the last good rules keep running.",
    )
    player: PlayerKind = _field(
        "web",
        "Player",
        "web: the kiosk page at http://HOST:PORT/ for a full-screen browser on this device;"
        " none: no display, decisions only go out (log, MQTT) for an external player.",
    )
    web: WebPlayerConfig = _section(WebPlayerConfig, "Web player", "The kiosk page server.")
    reload_check_s: float = _field(
        1.0, "Rules check interval", "Seconds between checks whether the rules file changed.", gt=0
    )


class StateConfig(ConfigModel):
    dir: Path = _field(
        Path("state"),
        "State folder",
        "Folder for what must survive a restart (the last good copy of the rules). Under"
        " systemd: /var/lib/edge-agent.",
    )


class MqttTlsConfig(ConfigModel):
    enabled: bool = _field(
        False,
        "TLS",
        "Encrypt the connection (usually port 8883) and check the broker's certificate.",
    )
    ca_file: Path | None = _field(
        None,
        "CA certificate",
        "PEM file of the CA that signed the broker's certificate; null: the system's trusted CAs.",
    )
    cert_file: Path | None = _field(
        None, "Client certificate", "PEM client certificate, for brokers that require one."
    )
    key_file: Path | None = _field(None, "Client key", "PEM private key of the client certificate.")
    verify_hostname: bool = _field(
        True,
        "Check the host name",
        "Check that the broker's certificate names `host`. Turn off only for a broker reached"
        " by an address its certificate does not list.",
    )


class HomeAssistantConfig(ConfigModel):
    discovery: bool = _field(
        True,
        "Discovery",
        "Announce this display and its sensors to Home Assistant (MQTT device discovery).",
    )
    prefix: str = _field(
        "homeassistant", "Discovery prefix", "Home Assistant's discovery prefix.", min_length=1
    )
    device_name: str | None = _field(
        None,
        "Device name",
        'The display\'s name in Home Assistant; null: "edge-agent SITE DEVICE".',
    )


class MqttConfig(ConfigModel):
    enabled: bool = _field(
        True,
        "Enabled",
        "Publish anonymous counts, plays and health over MQTT. Messages wait in a file in"
        " `state.dir` until the broker has them, so an outage delays them but loses none.",
    )
    host: str = _field("localhost", "Broker host", "Name or address of the broker.", min_length=1)
    port: int = _field(
        1883, "Broker port", "1883 is plain MQTT, 8883 MQTT over TLS.", ge=1, le=65535
    )
    site: str = _field(
        "default",
        "Site",
        "The store: the second level of every topic (edge-agent/SITE/DEVICE/...).",
    )
    device: str | None = _field(
        None,
        "Device",
        "This display: the third topic level; null: this machine's host name.",
    )
    base_topic: str = _field(
        "edge-agent",
        "Base topic",
        "First level(s) of every topic; no + or #, no / at the end.",
        pattern=r"^[^#+]*[^#+/]$",
    )
    client_id: str | None = _field(
        None,
        "Client id",
        "MQTT client id, unique per broker; null: edge-agent-SITE-DEVICE.",
        min_length=1,
    )
    username: str | None = _field(None, "User name", "null: connect without credentials.")
    password: str | None = _field(
        None,
        "Password",
        "Better kept out of this file: set EDGE_AGENT__MQTT__PASSWORD in the environment, or"
        " use password_file.",
    )
    password_file: Path | None = _field(
        None,
        "Password file",
        "A file holding the password (one line), e.g. a systemd credential:"
        " /run/credentials/edge-agent.service/mqtt-password. Used when `password` is null.",
    )
    tls: MqttTlsConfig = _section(MqttTlsConfig, "TLS", "Encryption and certificates.")
    keepalive_s: int = _field(
        30,
        "Keep-alive",
        "Seconds between pings; the broker declares the display offline after 1.5 times this.",
        ge=5,
        le=3600,
    )
    reconnect_min_s: float = _field(
        1.0, "First reconnect delay", "Seconds before the first reconnect attempt.", gt=0
    )
    reconnect_max_s: float = _field(
        60.0, "Longest reconnect delay", "The delay doubles per failed attempt up to this.", gt=0
    )
    outbox_max_messages: int = _field(
        100_000,
        "Outbox size",
        "Messages kept while the broker is unreachable; over this, statistics go first, then"
        " events; reports and plays are never dropped.",
        ge=100,
    )
    outbox_max_mb: float = _field(
        200.0, "Outbox bytes", "Megabytes of messages kept, with the same policy.", gt=0
    )
    current_min_interval_s: float = _field(
        1.0,
        "Current audience rate",
        "Least seconds between two audience/current messages (sent when the numbers change).",
        ge=0,
    )
    homeassistant: HomeAssistantConfig = _section(
        HomeAssistantConfig, "Home Assistant", "MQTT discovery for Home Assistant."
    )

    @field_validator("site", "device")
    @classmethod
    def _one_topic_level(cls, value: str | None) -> str | None:
        if value is not None and not is_topic_id(value):
            raise ValueError(ID_RULE)
        return value

    @model_validator(mode="after")
    def _check_tls_files(self) -> MqttConfig:
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: set both or neither")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be less than reconnect_min_s")
        return self


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


class PrivacyConfig(ConfigModel):
    controller: str | None = _field(
        None,
        "Controller",
        "The business responsible for the processing, as it should appear on the sign next to"
        ' the screen (`edge-agent notice`), e.g. "Example Foods GmbH, Hauptstr. 1, Berlin".'
        " Also sent in the retained privacy message. Required by `edge-agent notice`.",
    )
    contact: str | None = _field(
        None,
        "Contact",
        "Where people ask privacy questions or exercise their rights: an e-mail or postal"
        " address. Shown on the sign and sent in the privacy message. Required by"
        " `edge-agent notice`.",
    )
    dpo_contact: str | None = _field(
        None,
        "Data protection officer",
        "Contact of the data protection officer, where the business has one; null: not shown.",
    )
    more_info: str | None = _field(
        None,
        "Full notice",
        'Where the full notice is available, e.g. a URL or "at the customer desk"; null: the'
        " sign refers people to `contact`.",
    )

    @field_validator("controller", "contact", "dpo_contact", "more_info")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        # A blank value would print an empty line on the sign; null is how to leave it unset.
        if value is not None and not value.strip():
            raise ValueError("must not be empty (null leaves it unset)")
        return value


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
    ads: AdsConfig = _section(AdsConfig, "Ads", "Which ad plays: rules, player, reloads.")
    state: StateConfig = _section(StateConfig, "State", "Files kept between runs.")
    mqtt: MqttConfig = _section(
        MqttConfig, "MQTT", "Telemetry: where the anonymous counts and play events go."
    )
    logging: LoggingConfig = _section(LoggingConfig, "Logging", "What the daemon logs.")
    privacy: PrivacyConfig = _section(
        PrivacyConfig,
        "Privacy notice",
        "Who is responsible for this display, for the sign `edge-agent notice` prints.",
    )
    debug: DebugConfig = _section(
        DebugConfig, "Debug", "Debugging aids; all off by default. Never enable them in a store."
    )

    def source_settings(self) -> SourceSettings:
        return SourceSettings(**self.source.model_dump())

    def vision_settings(self) -> VisionSettings:
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
                brackets=vision.brackets,
            ),
        )

    def tracker_settings(self) -> TrackerSettings:
        return TrackerSettings(**self.tracking.model_dump())

    def fusion_settings(self) -> FusionSettings:
        return FusionSettings(
            samples_needed=self.audience.fusion_samples,
            gender_margin=self.vision.quality.gender_margin,
            brackets=self.vision.brackets,
        )

    def audience_settings(self) -> AudienceSettings:
        return AudienceSettings(**self.audience.model_dump(exclude={"fusion_samples"}))

    def ads_settings(self) -> AdsSettings:
        ads = self.ads
        return AdsSettings(
            rules=ads.rules,
            last_good=self.state.dir / LAST_GOOD_RULES_FILE,
            brackets=self.vision.brackets,
            player=ads.player,
            web_host=ads.web.host,
            web_port=ads.web.port,
            min_segment_size=self.audience.min_segment_size,
            reload_check_s=ads.reload_check_s,
        )

    def telemetry_settings(self) -> TelemetrySettings:
        """ValueError when `mqtt.password_file` cannot be read."""
        mqtt, discovery = self.mqtt, self.mqtt.homeassistant
        device = mqtt.device or device_id_from_hostname()
        tls = mqtt.tls
        link = LinkSettings(
            host=mqtt.host,
            port=mqtt.port,
            client_id=mqtt.client_id or f"edge-agent-{mqtt.site}-{device}",
            username=mqtt.username,
            password=read_secret(mqtt.password, mqtt.password_file, "mqtt.password_file"),
            tls=TlsSettings(tls.ca_file, tls.cert_file, tls.key_file, tls.verify_hostname)
            if tls.enabled
            else None,
            keepalive_s=mqtt.keepalive_s,
            reconnect_min_s=mqtt.reconnect_min_s,
            reconnect_max_s=mqtt.reconnect_max_s,
        )
        return TelemetrySettings(
            link=link,
            state_dir=self.state.dir,
            site=mqtt.site,
            device=device,
            base_topic=mqtt.base_topic,
            outbox_max_messages=mqtt.outbox_max_messages,
            outbox_max_bytes=round(mqtt.outbox_max_mb * 1024 * 1024),
            current_min_interval_s=mqtt.current_min_interval_s,
            discovery=discovery.discovery,
            discovery_prefix=discovery.prefix,
            device_name=discovery.device_name,
            min_segment_size=self.audience.min_segment_size,
            window_s=self.audience.window_s,
            controller=self.privacy.controller,
            contact=self.privacy.contact,
            brackets=self.vision.brackets,
        )

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of the config file (titles, descriptions, defaults, ranges)."""
        return cls.model_json_schema()


def read_secret(value: str | None, file: Path | None, file_key: str) -> str | None:
    """A secret given inline (`value`, e.g. from the environment) or in a file of its own
    (`file`, e.g. a systemd credential; its line end is not part of it). The value wins.
    ValueError naming `file_key` when the file cannot be read."""
    if value is not None or file is None:
        return value
    try:
        return file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as error:
        raise ValueError(f"{file_key}: cannot read {file}: {error}") from None


# --------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment (`os.environ` unless given) and validate.

    `path=None` means no file: every default, plus environment overrides. An empty file is the
    same as no file. Raises `ConfigError` listing every problem.
    """
    file = None if path is None else os.fspath(path)
    data: Any = {}
    lines: dict[KeyPath, int] = {}
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                [ConfigProblem(f"cannot read the config file: {error}", file)]
            ) from None
        try:
            data, lines = parse_yaml(text, file)
        except ProblemsError as error:
            raise ConfigError(error.problems) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                [
                    ConfigProblem(
                        "the top level must be a mapping of sections"
                        f" ({', '.join(Config.model_fields)}), got {kind_of(data)}",
                        file,
                        line=lines.get((), 1),
                    )
                ]
            )
    data, from_env, problems = _apply_environment(data, os.environ if environ is None else environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems += problems_from_validation(error, Config, data, file, lines, from_env)
    if problems:
        raise ConfigError(_sorted(problems))
    return config


def _apply_environment(
    data: dict[Any, Any], environ: Mapping[str, str]
) -> tuple[dict[Any, Any], dict[KeyPath, str], list[ConfigProblem]]:
    """Merge EDGE_AGENT__A__B=value overrides into a copy of the data."""
    overrides = sorted(
        (name, value) for name, value in environ.items() if name.upper().startswith(ENV_PREFIX)
    )
    if not overrides:
        return data, {}, []
    merged = _copy(data)
    from_env: dict[KeyPath, str] = {}
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
            message = f"cannot set {dotted(path)}: {dotted(blocked)} is not a section"
            problems.append(ConfigProblem(message, env_var=name))
    return merged, from_env, problems


def _set(data: dict[Any, Any], path: KeyPath, value: Any) -> KeyPath | None:
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


def _env_value(path: KeyPath, raw: str) -> Any:
    annotation = annotation_at(Config, path)
    if annotation is not None and _takes_text(annotation):
        return None if raw == "" and _takes_none(annotation) else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw  # validation says what is wrong with it, naming the variable


def _takes_text(annotation: Any) -> bool:
    return bool(flat_types(annotation) & {str, Path})


def _takes_none(annotation: Any) -> bool:
    return type(None) in flat_types(annotation)


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
    choices = literal_choices(field.annotation)
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
